// What the engine drops or refuses, seen from the outside: a client's or caller's bytes on the wire, then
// GET /metrics on the engine's API. Each loss is a counter (docs/api.md, Metrics) besides its log line.
import { describe, expect, test } from "bun:test";
import { MAX_BACKLOG_BYTES, BACKLOG_EVENT_COST } from "../../src/lua/scheduler";
import { BUN_TOO_BIG, MAX_MESSAGE_BYTES } from "../../src/engine/limits";
import { HARD_LIMIT_BYTES, MAX_REQUEST_BYTES } from "../../src/api/dispatcher";
import { postJson } from "../helpers/http.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { Client } from "../helpers/ws.ts";
import { TcpClient } from "../engine/helpers";
import { PausableClient, basic, startTestEngine, useTestEngine, type TestEngine } from "./helpers";

const readLog = captureLog();

const ENTRY = `
function on_message(msg, conn)
  if msg.data == "wait" then conn:wait_context_value("never") end
end`;

/** Value of the sample `series` (name and labels) on the engine's /metrics page. */
async function metric(e: TestEngine, series: string, headers: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${e.apiUrl}/metrics`, { headers })).text();
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  if (!line) throw new Error(`no sample ${series}`);
  return Number(line.slice(series.length + 1));
}

/** Pushes 64 KiB messages to client `id` through the API while it is connected; slowly once its writes back up. */
async function push(e: TestEngine, id: number, slowMs: number): Promise<void> {
  const d = "x".repeat(64 * 1024);
  const deadline = Date.now() + 10_000;
  while (e.engine.node.connections.has(id) && Date.now() < deadline) {
    await postJson(`${e.apiUrl}/v1/mesh/send`, { c: id, d });
    await Bun.sleep(e.engine.node.connections.get(id)?.stalledSince ? slowMs : 1);
  }
}

/** A client that connects (a WebSocket upgrade on `path`, or raw TCP) and then never reads. */
async function silentClient(port: number, path?: string): Promise<TcpClient> {
  const c = await TcpClient.connect(port);
  if (path) {
    c.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    await until(() => c.text().includes("\r\n\r\n"));
  }
  c.socket.pause();
  return c;
}

const onlyClient = async (e: TestEngine) => {
  await until(() => e.engine.node.connections.size === 1);
  return [...e.engine.node.connections.keys()][0]!;
};

describe("dropped messages and clients", () => {
  const e = useTestEngine(ENTRY, { edit: (c) => (c.engine.servers[0]!.writeTimeout = 0.5), sweepMs: 100 });
  const dropped = (reason: string) => metric(e, `connmix_engine_servers_dropped_messages_total{protocol="websocket",reason="${reason}"}`);
  const cut = (reason: string, protocol = "websocket") => metric(e, `connmix_engine_servers_dropped_clients_total{protocol="${protocol}",reason="${reason}"}`);
  const read = () => metric(e, 'connmix_engine_servers_read_messages_total{protocol="websocket"}');

  test("a flood behind a waiting callback: every message past the backlog bound is counted, and the client", async () => {
    const lost = async () => (await dropped("backlog_full")) + (await dropped("after_close"));
    const [read0, dropped0, full0, cut0] = [await read(), await lost(), await dropped("backlog_full"), await cut("backlog_full")];
    const flooder = await Client.open(e.chatUrl);
    flooder.send("wait");
    const chunk = "x".repeat(64 * 1024);
    for (let i = 0; i < Math.ceil(MAX_BACKLOG_BYTES / chunk.length) + 20; i++) flooder.send(chunk);
    expect((await flooder.waitClosed(5000)).code).toBe(1008);
    await until(() => e.engine.node.connections.size === 0);
    // Each message read was run ("wait"), queued behind it while the backlog had room, or dropped and counted:
    // past the bound, or (read in the same turn) after the engine closed the connection for it.
    const queued = Math.floor(MAX_BACKLOG_BYTES / (chunk.length + BACKLOG_EVENT_COST));
    const readNow = await read();
    expect(readNow - read0).toBeGreaterThan(1 + queued);
    expect((await lost()) - dropped0).toBe(readNow - read0 - 1 - queued);
    expect((await dropped("backlog_full")) - full0).toBeGreaterThan(0); // the one that passed the bound, at least
    expect((await cut("backlog_full")) - cut0).toBe(1);
  });

  test("a WebSocket message over 1 MiB: the client gets 1009, the message is counted and logged", async () => {
    const before = await dropped("too_large");
    const c = await Client.open(e.chatUrl);
    c.send("x".repeat(MAX_MESSAGE_BYTES + 1));
    expect((await c.waitClosed(5000)).code).toBe(1009);
    await until(() => readLog().includes(`sent a message over ${MAX_MESSAGE_BYTES} bytes, closed (1009)`), 3000, "the log line");
    expect((await dropped("too_large")) - before).toBe(1);
  });

  test("a client closing with the reason Bun gives a message over 1 MiB is not counted as one", async () => {
    const before = await dropped("too_large");
    for (const code of [1009, 4000]) {
      const c = await Client.open(e.chatUrl);
      await onlyClient(e);
      c.close(code, BUN_TOO_BIG);
      await until(() => e.engine.node.connections.size === 0);
    }
    expect(await dropped("too_large")).toBe(before);
  });

  test("a client that stops reading is cut off at writeTimeout and counted", async () => {
    const before = await cut("write_timeout");
    const c = await silentClient(e.engine.servers[0]!.config.port, "/chat");
    await push(e, await onlyClient(e), 50);
    expect(e.engine.node.connections.size).toBe(0);
    expect((await cut("write_timeout")) - before).toBe(1);
    c.end();
  }, 15_000);

  test("/ws/v1: a backend that reads none of its replies is closed once 16 MiB of them wait, with a log line; none is lost silently", async () => {
    const c = await PausableClient.open(e.api.port, "/ws/v1");
    c.pause();
    const id = "x".repeat(60_000);
    const n = 400; // 24 MB of replies, each echoing its id
    for (let i = 0; i < n; i++) c.send(JSON.stringify({ m: "nope", p: {}, i: `${i} ${id}` }));
    await until(() => readLog().includes("api connection 127.0.0.1 does not read its replies (over 16 MiB wait), closed"), 10_000, "the log line");
    c.resume();
    await until(() => c.closed, 10_000, "the close");
    expect(c.messages.length).toBeLessThan(n);
  }, 30_000);

  test("protected mode: a request naming the engine by a DNS name (a rebinding page) is refused and counted", async () => {
    const series = 'connmix_engine_api_refused_requests_total{reason="protected_mode"}';
    const before = await metric(e, series);
    const c = await TcpClient.connect(e.api.port);
    c.write("GET /metrics HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
    await c.waitClosed();
    expect(c.text()).toStartWith("HTTP/1.1 403");
    expect((await metric(e, series)) - before).toBe(1);
  });

  test("socket: a client pushed more than it reads is cut off and counted; so is one that sends 1 MiB without a package", async () => {
    // A package is whatever arrived, unless it starts with "w": then the script waits for more, forever.
    const s = await startTestEngine('function protocol_input(b) if b:tostring():sub(1, 1) == "w" then return 0 end return b:length() end', {
      edit: (c) => Object.assign(c.engine.servers[0]!, { protocol: "socket", writeTimeout: 30 }),
    });
    try {
      const c = await silentClient(s.engine.servers[0]!.config.port);
      await push(s, await onlyClient(s), 1);
      expect(s.engine.node.connections.size).toBe(0);
      expect(await metric(s, 'connmix_engine_servers_dropped_clients_total{protocol="socket",reason="unread_bytes"}')).toBe(1);
      c.end();
      const w = await TcpClient.connect(s.engine.servers[0]!.config.port);
      w.write("w" + "x".repeat(MAX_MESSAGE_BYTES));
      await w.waitClosed(5000);
      expect(await metric(s, 'connmix_engine_servers_dropped_messages_total{protocol="socket",reason="too_large"}')).toBe(1);
    } finally {
      await s.stop();
    }
  }, 15_000);
});

describe("refused API requests", () => {
  const USERS = [
    { username: "reader", password: "r", roles: ["read" as const], host: "*" },
    { username: "writer", password: "w", roles: ["read" as const, "write" as const], host: "*" },
  ];
  const e = useTestEngine(ENTRY, { users: USERS, logins: { maxFailures: 2, windowMs: 500 } });
  const refused = (reason: string) => metric(e, `connmix_engine_api_refused_requests_total{reason="${reason}"}`, basic("reader", "r"));

  test("each refusal is counted by reason", async () => {
    const reasons = ["origin", "unauthorized", "role", "too_large", "login_locked", "protected_mode"];
    const before = await Promise.all(reasons.map(refused));
    const send = (headers: Record<string, string>, d = "x") => postJson(`${e.apiUrl}/v1/mesh/send`, { c: 1, d }, headers);
    expect((await send({ ...basic("writer", "w"), origin: "https://evil.example" })).status).toBe(403);
    expect((await send({})).status).toBe(401);
    expect((await send(basic("reader", "r"))).status).toBe(403);
    expect((await send(basic("writer", "w"), "x".repeat(1 << 20))).status).toBe(413);
    for (const status of [401, 401, 429]) expect((await send(basic("writer", "nope"))).status).toBe(status);
    // The lockout refuses this address's logins, the scrape's too, until its window ends: each is one more.
    let locked = 1;
    const end = Date.now() + 5000;
    while ((await fetch(`${e.apiUrl}/metrics`, { headers: basic("reader", "r") })).status === 429 && Date.now() < end) locked++, await Bun.sleep(100);
    const after = await Promise.all(reasons.map(refused));
    expect(after.map((n, i) => n - before[i]!)).toEqual([1, 3, 1, 1, locked, 0]);
  });

  test("/ws/v1: a request over 1 MiB is answered with an error, one over 16 MiB closes the connection (1009); both counted", async () => {
    const before = await refused("too_large");
    const c = await Client.open(e.apiWs, { headers: basic("writer", "w") });
    c.send("x".repeat(MAX_REQUEST_BYTES + 1));
    expect((await c.json()).E.c).toBe(101);
    c.send("x".repeat(HARD_LIMIT_BYTES + 1));
    expect((await c.waitClosed()).code).toBe(1009);
    await until(() => readLog().includes(`api connection 127.0.0.1 sent a message over ${HARD_LIMIT_BYTES} bytes, closed (1009)`), 3000, "the log line");
    expect((await refused("too_large")) - before).toBe(2);
  });
});
