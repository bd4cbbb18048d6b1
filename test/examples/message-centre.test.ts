// The message-centre example end to end: its connmix.yaml and entry.lua on a Lua server and API server
// started in-process on free ports, its backend.ts as the auth service, real WebSocket clients. A token
// becomes a uid through mix.http.request, "@user" subscribes to user:<uid>, and publishes to that channel
// (from the backend through /ws/v1, or straight to POST /v1/mesh/publish) reach that user only.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { loadConfig } from "../../src/config/index.ts";
import { startLuaServers, type Engine } from "../../src/engine/servers.ts";
import { startApiServer, type ApiServer } from "../../src/api/server.ts";
import { startBackend } from "../../examples/message-centre/backend.ts";
import { postJson } from "../helpers/http.ts";
import { freePort } from "../helpers/ports.ts";
import { Client } from "../helpers/ws.ts";

const EXAMPLE = join(import.meta.dir, "..", "..", "examples", "message-centre");

let engine: Engine;
let api: ApiServer;
let backend: { port: number; stop(): void };
let url: string;
const clients: Client[] = [];

beforeAll(async () => {
  // "center" mode skips the entry check, which resolves the relative entry path against the cwd.
  const config = loadConfig(join(EXAMPLE, "connmix.yaml"), { mode: "center" });
  const sc = config.engine.servers[0]!;
  const backendPort = freePort();
  sc.entry = join(EXAMPLE, "entry.lua");
  sc.port = freePort();
  sc.byteCodeExpires = 0;
  sc.options.find((o) => o.name === "auth_url")!.value = `http://127.0.0.1:${backendPort}/auth`;
  config.engine.apiServer.port = freePort();
  engine = await startLuaServers(config, 1);
  api = await startApiServer(config, engine.node);
  backend = startBackend({ port: backendPort, engineApi: async () => `ws://127.0.0.1:${api.port}/ws/v1` });
  url = `ws://127.0.0.1:${sc.port}${sc.options.find((o) => o.name === "path")!.value}`;
});

afterAll(async () => {
  for (const c of clients) c.close();
  backend.stop();
  await api.stop();
  await engine.stop();
});

async function connect(): Promise<Client> {
  const c = await Client.open(url);
  clients.push(c);
  return c;
}
const ask = async (c: Client, req: object) => JSON.parse(await c.ask(req));

/** A client signed in as the owner of `token` and subscribed to "@user". */
async function signedIn(token: string, uid: number): Promise<Client> {
  const c = await connect();
  expect(await ask(c, { op: "auth", token })).toEqual({ op: "auth", status: "success", uid });
  expect(await ask(c, { op: "subscribe", channel: "@user" })).toEqual({ op: "subscribe", status: "success", channel: "@user" });
  return c;
}

describe("message centre", () => {
  test("token → uid over HTTP, @user → user:<uid>, and a publish to user:<uid> reaches that user only", async () => {
    const alice = await signedIn("token-alice", 1001);
    const bob = await signedIn("token-bob", 1002);

    // The backend pushes through the engine API's /ws/v1 (mesh.publish).
    expect(await postJson(`http://127.0.0.1:${backend.port}/notify`, { uid: 1001, msg: "you have mail" })).toEqual({ status: 200, body: { s: 1, f: 0 } });
    expect(await alice.json()).toEqual({ type: "notice", msg: "you have mail" });

    // Any backend can publish over HTTP as well.
    const published = await postJson(`http://127.0.0.1:${api.port}/v1/mesh/publish`, { c: "user:1002", d: '{"type":"notice","msg":"hi bob"}' });
    expect(published).toEqual({ status: 200, body: { E: null, r: { s: 1, f: 0 } } });
    expect(await bob.json()).toEqual({ type: "notice", msg: "hi bob" });

    // Nobody received the other's message: the next thing each gets is its own ping reply.
    expect(await ask(alice, { op: "ping" })).toEqual({ op: "ping", status: "success" });
    expect(await ask(bob, { op: "ping" })).toEqual({ op: "ping", status: "success" });
  });

  test("signing in as someone else drops the previous user's channel", async () => {
    const c = await signedIn("token-alice", 1001);
    expect(await ask(c, { op: "auth", token: "token-bob" })).toEqual({ op: "auth", status: "success", uid: 1002 });
    const { body: r } = await postJson(`http://127.0.0.1:${api.port}/v1/mesh/publish`, { c: "user:1001", d: "for alice" });
    expect(await ask(c, { op: "ping" })).toEqual({ op: "ping", status: "success" }); // not "for alice"
    expect(r.r.s).toBeGreaterThanOrEqual(1); // alice's other connection from the first test still gets it
  });

  test("bad requests get a reason and the connection stays usable", async () => {
    const c = await connect();
    const e = (op: string | undefined, msg: string) => ({ ...(op ? { op } : {}), status: "error", msg });
    expect(await ask(c, { op: "subscribe", channel: "@user" })).toEqual(e("subscribe", "auth first"));
    expect(await ask(c, { op: "auth", token: "stolen" })).toEqual(e("auth", "invalid token"));
    expect(await ask(c, { op: "auth" })).toEqual(e("auth", "token required"));
    expect(await ask(c, { op: "dance" })).toEqual(e("dance", "unknown op: dance"));
    expect(JSON.parse(await c.ask("{not json"))).toEqual(e(undefined, "invalid json"));
    expect(await ask(c, { op: "auth", token: "token-bob" })).toEqual({ op: "auth", status: "success", uid: 1002 });
    expect(await ask(c, { op: "subscribe", channel: "@admin" })).toEqual(e("subscribe", "unknown channel: @admin"));
  });

  test("with the auth backend down, sign-in fails with a reason and other requests still work", async () => {
    backend.stop();
    const c = await connect();
    expect(await ask(c, { op: "auth", token: "token-alice" })).toEqual({ op: "auth", status: "error", msg: "auth service unavailable" });
    expect(await ask(c, { op: "ping" })).toEqual({ op: "ping", status: "success" });
  });
});
