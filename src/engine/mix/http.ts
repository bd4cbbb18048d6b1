// JS side of mix.http.request (http.lua), on fetch. Strings arrive as bytes (binaryArgs), so request bodies
// and header values keep every byte; header values travel as latin1, the byte-per-character form fetch uses.
import type { LuaFamily } from "../../lua/family";
import type { PlainValue } from "../../lua/stack";
import httpLua from "./http.lua" with { type: "text" };

/** Used when the script gives no `timeout`; covers connecting, sending and reading the whole body. */
const DEFAULT_TIMEOUT_SECONDS = 30;

const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/; // an HTTP token
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^((?:\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g;

type Table = Record<string, PlainValue>;

const text = (v: PlainValue | undefined) => (v instanceof Uint8Array ? Buffer.from(v).toString() : String(v ?? ""));
const latin1 = (v: PlainValue) => (v instanceof Uint8Array ? Buffer.from(v).toString("latin1") : String(v));
/** A Lua table read as name → value pairs (an empty table reads as an empty array). */
const pairsOf = (v: PlainValue | undefined): [string, PlainValue][] => (v && typeof v === "object" ? Object.entries(v) : []);

/** Seconds (a number or numeric string) or a Go-style duration ("500ms", "2s", "1h", "1m30s") in ms; null when invalid. */
function timeoutMs(v: PlainValue | undefined): number | null {
  if (v === undefined || v === null) return DEFAULT_TIMEOUT_SECONDS * 1000;
  const s = typeof v === "number" ? String(v) : text(v).trim();
  if (s !== "" && Number.isFinite(Number(s))) return Number(s) >= 0 ? Number(s) * 1000 : null;
  if (!DURATION.test(s)) return null;
  let ms = 0;
  for (const [, n, unit] of s.matchAll(PART)) ms += Number(n) * UNIT_MS[unit!]!;
  return ms;
}

/** `host:port` with the scheme's default port filled in, for messages. */
const hostPort = (u: URL) => `${u.hostname}:${u.port || (u.protocol === "https:" ? 443 : 80)}`;

function failure(e: unknown, timeout: string, url: URL): string {
  const err = e as NodeJS.ErrnoException;
  if (err.name === "TimeoutError" || err.name === "AbortError") return `timeout after ${timeout}`;
  switch (err.code) {
    case "ECONNREFUSED": return `connection refused (${hostPort(url)})`;
    case "ENOTFOUND":
    case "EAI_AGAIN": return `cannot resolve host ${url.hostname}`;
    case "ECONNRESET": return `connection reset by ${hostPort(url)}`;
    case "EPROTO": return `TLS handshake with ${hostPort(url)} failed`;
    case "TooManyRedirects": return `too many redirects from ${url.href}`;
    default: return `http request to ${hostPort(url)} failed: ${err.message}`;
  }
}

/** Builds the fetch arguments from the script's options; a string is an error for the script. */
function prepare(methodArg: PlainValue, urlArg: PlainValue, options: Table): { url: URL; init: RequestInit; timeout: string } | string {
  const method = text(methodArg);
  if (!METHOD.test(method)) return `invalid http method: ${method}`;
  let href = text(urlArg);
  const query = text(options.query).replace(/^\?/, "");
  if (query !== "") {
    const hash = href.indexOf("#");
    const [base, fragment] = hash < 0 ? [href, ""] : [href.slice(0, hash), href.slice(hash)];
    href = base + (base.includes("?") ? "&" : "?") + query + fragment;
  }
  let url: URL;
  try {
    url = new URL(href);
  } catch {
    return `invalid url: ${href}`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `unsupported url scheme ${url.protocol} (http and https only)`;

  for (const name of ["headers", "cookies"]) {
    const t = options[name];
    if (Array.isArray(t) && t.length > 0) return `http option ${name} must map names to values`;
  }
  const headers = new Headers();
  for (const [name, value] of pairsOf(options.headers)) {
    // A list sends the header once per value.
    for (const v of Array.isArray(value) ? value : [value]) {
      try {
        headers.append(name, latin1(v));
      } catch {
        return `invalid http header ${JSON.stringify(name)}`;
      }
    }
  }
  const cookies = pairsOf(options.cookies).map(([name, value]) => `${name}=${latin1(value)}`);
  if (cookies.length > 0) {
    const given = headers.get("cookie");
    headers.set("cookie", (given ? given + "; " : "") + cookies.join("; "));
  }
  if (options.auth !== undefined) {
    const auth = options.auth as Table | PlainValue[];
    // {username, password}, {"u", "p"}, or {user, pass} as older connmix docs wrote it.
    const [user, pass] = Array.isArray(auth) ? auth : [auth.username ?? auth.user, auth.password ?? auth.pass];
    if (user === undefined || user === null) return "http option auth must be {username, password}";
    const credentials = Buffer.concat([Buffer.from(latin1(user), "latin1"), Buffer.from(":"), Buffer.from(latin1(pass ?? ""), "latin1")]);
    headers.set("authorization", "Basic " + credentials.toString("base64"));
  }
  const body = options.body as Uint8Array | undefined;
  const upper = method.toUpperCase();
  if (body !== undefined && (upper === "GET" || upper === "HEAD")) return `a ${upper} request cannot have a body`;

  const ms = timeoutMs(options.timeout);
  if (ms === null) return `invalid timeout: ${text(options.timeout)} (seconds, or a duration such as "500ms", "2s", "1h")`;
  const timeout = options.timeout === undefined ? `${DEFAULT_TIMEOUT_SECONDS}s` : typeof options.timeout === "number" ? `${options.timeout}s` : text(options.timeout);
  const init: RequestInit = { method, headers, body, redirect: "follow" };
  if (ms > 0) init.signal = AbortSignal.timeout(ms);
  return { url, init, timeout };
}

/** Response headers by lowercase name; repeated headers joined with ", ", Set-Cookie lines with "\n". Values are raw bytes. */
function headersOf(res: Response): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  res.headers.forEach((value, name) => {
    if (name !== "set-cookie") out[name] = Buffer.from(value, "latin1");
  });
  const set = res.headers.getSetCookie();
  if (set.length > 0) out["set-cookie"] = Buffer.from(set.join("\n"), "latin1");
  return out;
}

/** name → value of every Set-Cookie (attributes dropped, surrounding quotes removed; a later one wins). */
function cookiesOf(res: Response): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const line of res.headers.getSetCookie()) {
    const pair = line.split(";", 1)[0]!;
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const value = pair.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
    out[pair.slice(0, eq).trim()] = Buffer.from(value, "latin1");
  }
  return out;
}

export const http: LuaFamily = {
  name: "http",
  lua: httpLua,
  binaryArgs: true,
  blocking: {
    "http.request": async ([method, url, options]) => {
      const req = prepare(method!, url!, (options ?? {}) as Table);
      if (typeof req === "string") return [null, req];
      try {
        const res = await fetch(req.url.href, req.init);
        const body = new Uint8Array(await res.arrayBuffer());
        return [{
          status_code: res.status,
          url: res.url,
          body,
          body_size: body.length,
          headers: headersOf(res),
          cookies: cookiesOf(res),
        }];
      } catch (e) {
        return [null, failure(e, req.timeout, req.url)];
      }
    },
  },
};
