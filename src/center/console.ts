// The web console on the center's API server: the page at /console/ (embedded in the executable) and the
// JSON it reads, under /v1/console/ (docs/console.md). The center knows the engines from its registry and
// asks each one's API server for its view (GET /v1/introspect), forwarding the console user's
// credentials, so engines apply their own access control. Reads need the read role; the actions
// (POST: send, publish) need write, like every POST of the API.
import pageImport from "../console/index.html" with { type: "text" };
import { versionLine } from "../version";
import { parseClientId, nodeOf } from "../net/client-ids";
import { recentLines } from "../log/recent";
import type { Access } from "../access/access";
import type { NodeEntry, RegistryServer } from "./registry";
import { nodeInfo } from "./http";
import { readBody } from "../net/http";

/** How long the center waits for an engine's answer before showing it as unreachable. */
export const ENGINE_TIMEOUT_MS = 2000;
/** Largest action body read (a frame to send or publish). */
const MAX_ACTION_BYTES = 1 << 20;
const JSON_HEADERS = { "content-type": "application/json" };
/** bun-types declares .html imports as HTML bundles; `type: "text"` makes it the file's text. */
const page = pageImport as unknown as string;
const startedAt = Math.floor(Date.now() / 1000);

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
/** A percent-encoded path segment, decoded; null when it is malformed (`%E0%A4%A`). */
function decoded(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}
const apiUrl = (n: NodeEntry, path: string) => `http://${nodeInfo(n).api_server}${path}`;

interface EngineAnswer {
  ok: boolean;
  status: number;
  body: unknown;
  error?: string;
}

export class ConsoleRoutes {
  constructor(
    private readonly registry: RegistryServer,
    private readonly access: Access,
    private readonly timeoutMs = ENGINE_TIMEOUT_MS,
  ) {}

  /** The response for a console path, or null when `path` is not one. Access was checked already. */
  handle(req: Request, path: string, ip: string): Response | Promise<Response> | null {
    if (path === "/console") return Response.redirect("/console/", 301);
    if (path === "/console/") return this.page();
    if (!path.startsWith("/v1/console/")) return null;
    const auth = req.headers.get("authorization");
    const route = path.slice("/v1/console/".length);
    if (req.method === "POST") {
      if (route === "send" || route === "publish") return this.act(req, route, auth);
      return new Response("not found\n", { status: 404 });
    }
    if (req.method !== "GET") return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, POST" } });
    if (route === "overview") return this.overview(auth, this.access.allows(req, ip, "write"));
    if (route.startsWith("nodes/")) {
      const id = decoded(route.slice(6));
      return id === null ? json({ error: "malformed node id in the path" }, 400) : this.node(id, auth);
    }
    return new Response("not found\n", { status: 404 });
  }

  /** The page, with a fresh nonce for its inline script and style (the only ones its CSP allows). */
  private page(): Response {
    const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64");
    return new Response(page.replaceAll("NONCE", nonce), {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
        "x-content-type-options": "nosniff",
        "cache-control": "no-store",
      },
    });
  }

  /** GET or POST to an engine's API with the console user's credentials; never throws. */
  private async ask(n: NodeEntry, path: string, auth: string | null, body?: string): Promise<EngineAnswer> {
    const headers: Record<string, string> = auth ? { authorization: auth } : {};
    try {
      const res = await fetch(apiUrl(n, path), {
        method: body === undefined ? "GET" : "POST",
        headers: body === undefined ? headers : { ...headers, ...JSON_HEADERS },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // an access-control refusal is plain text
      }
      return { ok: res.ok, status: res.status, body: parsed, error: res.ok ? undefined : `HTTP ${res.status}: ${text.trim()}` };
    } catch (e) {
      const why = (e as Error).name === "TimeoutError" ? `no answer within ${this.timeoutMs} ms` : (e as Error).message;
      return { ok: false, status: 502, body: null, error: why };
    }
  }

  private async overview(auth: string | null, canWrite: boolean): Promise<Response> {
    const entries = [...this.registry.nodes.values()];
    const answers = await Promise.all(entries.map((n) => this.ask(n, "/v1/introspect?summary=1", auth)));
    const channels = new Map<string, { name: string; subscribers: number; nodes: Record<string, number> }>();
    const queues: { node: string; topic: string; items: number; consumers: number }[] = [];
    const nodes = entries.map((n, i) => {
      const a = answers[i]!;
      const engine = a.ok ? (a.body as { channels: { name: string; subscribers: number }[]; queues: typeof queues }) : null;
      for (const ch of engine?.channels ?? []) {
        const c = channels.get(ch.name) ?? { name: ch.name, subscribers: 0, nodes: {} };
        c.subscribers += ch.subscribers;
        c.nodes[n.id] = ch.subscribers;
        channels.set(ch.name, c);
      }
      for (const q of engine?.queues ?? []) queues.push({ ...q, node: n.id });
      return { ...nodeInfo(n), engine, error: a.error ?? null };
    });
    return json({
      center: { version: versionLine(), started_at: startedAt, log: recentLines(100) },
      user: { write: canWrite },
      nodes,
      channels: [...channels.values()].sort((a, b) => a.name.localeCompare(b.name)),
      queues,
    });
  }

  private async node(id: string, auth: string | null): Promise<Response> {
    const n = this.registry.nodes.get(id);
    if (!n) return json({ error: `node ${id} is not registered` }, 404);
    const a = await this.ask(n, "/v1/introspect", auth);
    return a.ok ? json(a.body) : json({ error: a.error }, 502);
  }

  /**
   * send {c, d} goes to the engine that holds client c (any engine when its node is not listed; the mesh
   * routes it); publish {c, d} to one engine, which publishes on every engine. The engine's answer is passed on.
   */
  private async act(req: Request, route: "send" | "publish", auth: string | null): Promise<Response> {
    const body = await readBody(req, MAX_ACTION_BYTES);
    if (typeof body !== "string") {
      this.access.refused.too_large++;
      return new Response(JSON.stringify({ E: { c: 101, m: "request too large" } }), { status: 413, headers: { ...JSON_HEADERS, connection: "close" } });
    }
    let c: unknown;
    try {
      c = (JSON.parse(body) as { c?: unknown }).c;
    } catch (e) {
      return json({ E: { c: 101, m: `malformed JSON: ${(e as Error).message}` } }, 400);
    }
    const entries = [...this.registry.nodes.values()];
    const id = route === "send" ? parseClientId(c) : null;
    const target = entries.find((n) => id !== null && n.index === nodeOf(id)) ?? entries.find((n) => !n.draining) ?? entries[0];
    if (!target) return json({ E: { c: 401, m: "no engine is registered" } }, 503);
    const a = await this.ask(target, `/v1/mesh/${route}`, auth, body);
    return a.body && typeof a.body === "object" ? json(a.body, a.status) : json({ E: { c: 401, m: a.error ?? "engine error" } }, 502);
  }
}
