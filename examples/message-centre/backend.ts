// The message-centre example's backend:
//   POST /auth    {"token":"..."}          → 200 {"uid":N} for a known token, else 401 (the entry calls this)
//   POST /notify  {"uid":N,"msg":"..."}    → publishes {"type":"notice","msg":...} to channel user:<N>
//                                             through an engine's /ws/v1 and answers {"s":delivered,"f":failed}
// The demo tokens are printed at start. It listens on the port of the entry's auth_url option.
// Usage: bun examples/message-centre/backend.ts [path/to/connmix.yaml]
import { EngineApi, engineApis, readExampleConfig } from "../lib/connmix-api.ts";

/** Demo users. A real service would look tokens up in its session store. */
export const TOKENS: Record<string, number> = { "token-alice": 1001, "token-bob": 1002 };

export interface BackendOptions {
  port: number;
  hostname?: string;
  /** The ws://…/ws/v1 URL of an engine API to publish through (asked again after a failure). */
  engineApi: () => Promise<string>;
}

export function startBackend(opts: BackendOptions): { port: number; stop(): void } {
  let api: Promise<EngineApi> | null = null;
  const engine = () => (api ??= opts.engineApi().then(EngineApi.open));
  const publish = async (channel: string, data: string) => {
    try {
      return await (await engine()).call("mesh.publish", { c: channel, d: data });
    } catch (e) {
      api = null; // the next notify finds an engine again
      throw e;
    }
  };

  const server = Bun.serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: opts.port,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (req.method !== "POST") return Response.json({ error: "POST only" }, { status: 405 });
      const body = (await req.json().catch(() => null)) as Record<string, unknown> | null;
      if (path === "/auth") {
        const uid = typeof body?.token === "string" ? TOKENS[body.token] : undefined;
        return uid === undefined ? Response.json({ error: "invalid token" }, { status: 401 }) : Response.json({ uid });
      }
      if (path === "/notify") {
        if (typeof body?.uid !== "number" || typeof body.msg !== "string") {
          return Response.json({ error: 'body must be {"uid":N,"msg":"..."}' }, { status: 400 });
        }
        try {
          return Response.json(await publish(`user:${body.uid}`, JSON.stringify({ type: "notice", msg: body.msg })));
        } catch (e) {
          return Response.json({ error: `publish failed: ${(e as Error).message}` }, { status: 502 });
        }
      }
      return Response.json({ error: "not found" }, { status: 404 });
    },
  });
  return { port: server.port!, stop: () => server.stop(true) };
}

if (import.meta.main) {
  const { center, options } = readExampleConfig(process.argv[2] ?? "examples/message-centre/connmix.yaml");
  const auth = new URL(options.auth_url!);
  // The engines register with the center a moment after start-up.
  const firstEngine = async () => {
    for (;;) {
      const [url] = await engineApis(center);
      if (url) return url;
      await Bun.sleep(500);
    }
  };
  const backend = startBackend({ port: Number(auth.port), hostname: auth.hostname, engineApi: firstEngine });
  console.log(`message-centre backend on http://${auth.hostname}:${backend.port}; demo tokens: ${Object.keys(TOKENS).join(", ")}`);
}
