// One connection's trouble stays its own: a Lua error, a runaway loop, an oversized frame, a client that
// never reads, a callback blocked in wait_context_value. Real servers, real clients, the engine's log.
import { afterAll, describe, expect, test } from "bun:test";
import { MAX_MESSAGE_BYTES, MAX_PENDING_BYTES } from "../../src/engine/limits";
import { TcpConnection, WsConnection } from "../../src/engine/connection";
import type { Started } from "../helpers/engine.ts";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { Client } from "../helpers/ws.ts";
import { flood, startServer, TcpClient } from "./helpers";

const readLog = captureLog();
afterAll(cleanupAll);

const ENTRY = `
  function on_message(msg, conn)
    local d = msg.data
    if d == "bad" then local t = nil; return t.field end
    if d == "loop" then while true do end end
    if d == "login" then
      local uid, err = conn:wait_context_value("uid")
      mix.log(mix.INFO, "login " .. tostring(uid) .. " " .. tostring(err))
      return conn:send("uid=" .. tostring(uid) .. " err=" .. tostring(err) .. " me=" .. tostring(mix.websocket() == conn))
    end
    conn:send("m:" .. d)
  end
  function on_close(id, err) mix.log(mix.INFO, "closed " .. id .. " " .. tostring(err)) end
`;

async function reply(c: Client, text: string): Promise<string> {
  const n = c.received.length;
  c.send(text);
  await until(() => c.received.length > n, 3000, `reply to ${text}`);
  return String(c.received[n]);
}

describe("errors", () => {
  test("a Lua error is logged at ERROR with its traceback; that connection and the others keep working", async () => {
    const s = await startServer(ENTRY);
    const a = await Client.open(s.url);
    const b = await Client.open(s.url);
    a.send("bad");
    expect(await reply(b, "x")).toBe("m:x");
    expect(await reply(a, "after")).toBe("m:after");
    const log = readLog();
    const line = log.split("\n").find((l) => l.includes("attempt to index local 't'"));
    expect(line).toMatch(/^\S+ \S+\tERROR\t[^\t]+\tlua callback error: .*entry\.lua:4: attempt to index local 't' \(a nil value\)$/);
    const rest = log.slice(log.indexOf(line!) + line!.length);
    expect(rest).toMatch(/^\nstack traceback:\n(\s+.*\n)*?\s+.*entry\.lua:4: in function/);
  });

  test("a runaway loop is stopped after its time budget and logged; every connection keeps working", async () => {
    const s = await startServer(ENTRY);
    const a = await Client.open(s.url);
    const b = await Client.open(s.url);
    const started = Date.now();
    a.send("loop");
    expect(await reply(b, "waiting")).toBe("m:waiting");
    expect(Date.now() - started).toBeLessThan(2500);
    expect(await reply(a, "alive")).toBe("m:alive");
    expect(readLog()).toMatch(/\tERROR\t[^\t]+\tlua callback error: .*callback exceeded its time budget of 1000 ms/);
  });

  test("a message over the size limit closes only its connection with 1009", async () => {
    const s = await startServer(ENTRY);
    const a = await Client.open(s.url);
    const b = await Client.open(s.url);
    a.send(new Uint8Array(MAX_MESSAGE_BYTES + 1));
    await until(() => a.closed !== null);
    expect(a.closed!.code).toBe(1009);
    expect(await reply(b, "fine")).toBe("m:fine");
    await until(() => s.engine.node.connections.size === 1);
  });
});

describe("blocking", () => {
  test("wait_context_value holds only its connection, in order, until conn.call sets the value", async () => {
    const s = await startServer(ENTRY);
    const a = await Client.open(s.url);
    const b = await Client.open(s.url);
    a.send("login");
    a.send("first");
    a.send("second");
    expect(await reply(b, "b1")).toBe("m:b1");
    expect(await reply(b, "b2")).toBe("m:b2");
    await Bun.sleep(30);
    expect(a.received).toEqual([]); // a's later frames wait behind the blocked callback
    const id = [...s.engine.node.connections.keys()][0]!;
    expect(s.engine.node.callLocal(id, "set_context_value", ["other", 1])).toBeNull(); // not the awaited key
    await Bun.sleep(30);
    expect(a.received).toEqual([]);
    expect(s.engine.node.callLocal(id, "set_context_value", ["uid", 42])).toBeNull();
    await until(() => a.received.length === 3);
    expect(a.received).toEqual(["uid=42 err=nil me=true", "m:first", "m:second"]);
  });

  test("a wait ends with an error when its connection closes, and on_close still runs", async () => {
    const s = await startServer(ENTRY);
    const a = await Client.open(s.url);
    const id = [...s.engine.node.connections.keys()][0]!;
    a.send("login");
    await Bun.sleep(30);
    a.close(4000, "gone");
    await until(() => s.engine.node.connections.size === 0);
    await Bun.sleep(30);
    const log = readLog();
    expect(log).toContain("login nil connection closed");
    expect(log).toContain(`closed ${id} close 4000 gone`);
  });
});

/** Opens a WebSocket over a raw TCP client that reads the 101 response and then never reads again. */
async function silentWebSocket(port: number): Promise<TcpClient> {
  const c = await TcpClient.connect(port);
  c.write("GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  await until(() => c.text().includes("\r\n\r\n"));
  expect(c.text()).toStartWith("HTTP/1.1 101");
  c.socket.pause();
  return c;
}

describe("slow readers", () => {
  const rss = () => process.memoryUsage().rss;

  test("socket: a client that never reads is dropped after writeTimeout; its backlog stays bounded", async () => {
    const s = await startServer(ENTRY.replace("function on_message", "function protocol_input(b) return b:length() end\nfunction on_message"),
      { protocol: "socket", writeTimeout: 0.5 });
    const c = await TcpClient.connect(s.port, { read: false });
    await until(() => s.engine.node.connections.size === 1);
    const conn = [...s.engine.node.connections.values()][0] as TcpConnection;
    expect(conn).toBeInstanceOf(TcpConnection);
    const before = rss();
    const r = await flood(s, conn, () => conn.pendingBytes, 50);
    expect(r.open).toBe(false);
    expect(r.droppedAfter).toBeGreaterThanOrEqual(450);
    expect(r.droppedAfter).toBeLessThan(3000);
    expect(r.max).toBeLessThanOrEqual(MAX_PENDING_BYTES);
    expect(rss() - before).toBeLessThan(64 << 20);
    await c.waitClosed();
    expect(readLog()).toMatch(new RegExp(`\\tWARN\\t[^\\t]+\\tclient ${conn.id} did not read for 0.5s, dropped`));
    expect(readLog()).toContain(`closed ${conn.id} write timeout`);
  }, 10_000);

  test("socket: a client flooded faster than writeTimeout is dropped at the pending-bytes bound", async () => {
    const s = await startServer(ENTRY.replace("function on_message", "function protocol_input(b) return b:length() end\nfunction on_message"),
      { protocol: "socket", writeTimeout: 30 });
    await TcpClient.connect(s.port, { read: false });
    await until(() => s.engine.node.connections.size === 1);
    const conn = [...s.engine.node.connections.values()][0] as TcpConnection;
    expect(conn).toBeInstanceOf(TcpConnection);
    const before = rss();
    const r = await flood(s, conn, () => conn.pendingBytes, 2);
    expect(r.open).toBe(false);
    expect(r.max).toBeLessThanOrEqual(MAX_PENDING_BYTES);
    expect(rss() - before).toBeLessThan(64 << 20);
    expect(readLog()).toContain(`closed ${conn.id} too many unread bytes`);
  }, 10_000);

  test("websocket: a client that never reads is dropped after writeTimeout; others are served meanwhile", async () => {
    const s = await startServer(ENTRY, { writeTimeout: 0.5 });
    const c = await silentWebSocket(s.port);
    const conn = [...s.engine.node.connections.values()][0] as WsConnection;
    expect(conn).toBeInstanceOf(WsConnection);
    const b = await Client.open(s.url);
    const before = rss();
    const r = await flood(s, conn, () => conn.ws?.getBufferedAmount() ?? 0, 50);
    expect(r.open).toBe(false);
    expect(r.droppedAfter).toBeGreaterThanOrEqual(450);
    expect(r.droppedAfter).toBeLessThan(3000);
    expect(r.max).toBeLessThanOrEqual(MAX_PENDING_BYTES + 64 * 1024);
    expect(rss() - before).toBeLessThan(64 << 20);
    c.socket.resume(); // a paused socket does not notice the close
    await c.waitClosed();
    expect(await reply(b, "still served")).toBe("m:still served");
    expect(readLog()).toContain(`closed ${conn.id} write timeout`);
  }, 15_000);
});
