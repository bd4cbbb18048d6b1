// Canned answers for mix.http.request and redis:command in `connmix test`. The scripts still run the real
// Lua side of both families (argument checks, header lookup); only the network call is replaced: the
// http family's blocking op by one that looks the request up in the case, and the Redis pools by ones
// that look the command up. A request the case did not foresee fails in the script and in the report.
import type { LuaFamily } from "../lua/family";
import type { PlainValue } from "../lua/stack";
import type { RedisCommands } from "../engine/host";
import { ReplyError, type Arg, type Reply } from "../redis/client";
import type { CannedHttp, CannedRedis } from "./cases";

/** A request with no canned answer: what it was. */
export interface Unanswered {
  what: string;
}

const text = (v: PlainValue | undefined) => (v instanceof Uint8Array ? Buffer.from(v).toString() : String(v ?? ""));

/** The url as mix.http.request would fetch it: `query` appended. */
function fullUrl(url: string, options: Record<string, PlainValue>): string {
  const query = text(options.query).replace(/^\?/, "");
  return query === "" ? url : url + (url.includes("?") ? "&" : "?") + query;
}

export function cannedHttpFamily(canned: CannedHttp[], unanswered: Unanswered[]): LuaFamily {
  return {
    name: "canned-http",
    // Installed after http, so its blocking op replaces http's.
    uses: ["http"],
    blocking: {
      "http.request": async ([methodArg, urlArg, optionsArg]) => {
        const options = (optionsArg ?? {}) as Record<string, PlainValue>;
        const method = text(methodArg).toUpperCase();
        const url = fullUrl(text(urlArg), options);
        const body = options.body === undefined ? undefined : text(options.body);
        const hit = canned.find((c) => c.url === url && (c.method === undefined || c.method === method) && (c.body === undefined || c.body === body));
        if (!hit) {
          const what = `${method} ${url}${body === undefined ? "" : ` body ${JSON.stringify(body)}`}`;
          unanswered.push({ what: `http ${what}` });
          return [null, `connmix test: no canned http response for ${what}`];
        }
        if (hit.error !== undefined) return [null, hit.error];
        const responseBody = Buffer.from(hit.response);
        const headers: Record<string, Uint8Array> = {};
        for (const [k, v] of Object.entries(hit.headers)) headers[k] = Buffer.from(v);
        return [{ status_code: hit.status, url, body: responseBody, body_size: responseBody.length, headers, cookies: {} }];
      },
    },
  };
}

/** A YAML reply as Redis would give it: strings as bulk bytes, {error: text} as an error reply. */
function reply(v: unknown): Reply {
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (Array.isArray(v)) return v.map(reply);
  if (typeof v === "object" && "error" in v) return new ReplyError(String((v as { error: unknown }).error));
  return Buffer.from(String(v));
}

/** One pool per name the case mentions (plus `default`), each answering from the case's list. */
export function cannedRedisPools(canned: CannedRedis[], unanswered: Unanswered[]): Map<string, RedisCommands> {
  const pools = new Map<string, RedisCommands>();
  for (const name of new Set(["default", ...canned.map((c) => c.pool)])) {
    pools.set(name, {
      command: async (cmd: string, args: Arg[]) => {
        const words = [cmd, ...args.map((a) => (typeof a === "string" ? a : Buffer.from(a).toString()))];
        const hit = canned.find((c) => c.pool === name && c.command.length === words.length && c.command.every((w, i) => (i === 0 ? w.toUpperCase() === words[0]!.toUpperCase() : w === words[i])));
        if (!hit) {
          unanswered.push({ what: `redis ${name}: ${words.join(" ")}` });
          return new ReplyError(`connmix test: no canned reply for ${words.join(" ")}`);
        }
        return reply(hit.reply);
      },
    });
  }
  return pools;
}
