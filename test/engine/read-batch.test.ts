// Messages read in one turn of the event loop reach Lua as a batch (src/engine/read-batch.ts), and the sends
// they make are held until it ends (src/engine/outbox.ts). What a client sees must not change: each
// connection's messages in order, every reply, on_close after the messages a client sent before closing, a
// callback's conn:close() not disturbing other connections, batches past the bound, and held sends keeping
// their bytes and their place before a publication or a close.
import { afterAll, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { cleanupAll } from "../helpers/files";
import { captureLog } from "../helpers/log";
import { startEngine } from "../helpers/engine";
import { Client } from "../helpers/ws";
import { until } from "../helpers/wait";
import { MAX_BATCH_MESSAGES } from "../../src/engine/limits";
import { maskedFrame as frame } from "./helpers";

afterAll(cleanupAll);
const readLog = captureLog();

const ENTRY = `
expected = {}   -- client id -> the next number it must send
events = {}     -- what happened, in order, for "report"
function on_message(msg, conn)
  local id, d = conn:client_id(), msg.data
  if d == "report" then return conn:send(table.concat(events, " ")) end
  if d == "close" then events[#events + 1] = "close" return conn:close() end
  if d:sub(1, 1) == "m" then
    local err = conn:send(d)
    events[#events + 1] = d .. "=" .. tostring(err)
    return
  end
  local n = tonumber(d)
  local want = expected[id] or 1
  expected[id] = n + 1
  conn:send(n == want and ("ok " .. n) or ("out of order: " .. n .. " after " .. (want - 1)))
end
function on_close(id, err, conn) events[#events + 1] = "on_close" end
`;

/** A WebSocket over a raw TCP socket, so that many frames go out in one write; collects the server's text frames. */
async function rawClient(port: number): Promise<{ sock: Socket; texts: string[]; closed: () => boolean }> {
  const texts: string[] = [];
  let buf = Buffer.alloc(0);
  let upgraded = false;
  let ended = false;
  const sock = connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    sock.on("error", reject);
    sock.on("close", () => (ended = true));
    sock.on("connect", () =>
      sock.write(`GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve();
      }
      while (buf.length >= 2) {
        let len = buf[1]! & 127;
        let h = 2;
        if (len === 126) [len, h] = [buf.length >= 4 ? buf.readUInt16BE(2) : Infinity, 4];
        if (len === 127 || buf.length < h + len) break;
        if ((buf[0]! & 15) === 1) texts.push(buf.subarray(h, h + len).toString());
        buf = buf.subarray(h + len);
      }
    });
  });
  return { sock, texts, closed: () => ended };
}

test("many clients sending at once: each gets every reply, in the order it sent", async () => {
  const { url } = await startEngine(ENTRY);
  const clients = await Promise.all(Array.from({ length: 20 }, () => Client.open(url)));
  for (const c of clients) for (let i = 1; i <= 200; i++) c.send(String(i));
  for (const c of clients) await c.waitFor(200);
  for (const c of clients) expect(c.received).toEqual(Array.from({ length: 200 }, (_, i) => `ok ${i + 1}`));
});

test(`more than ${MAX_BATCH_MESSAGES} messages in one write: all answered, in order`, async () => {
  const { port } = await startEngine(ENTRY);
  const c = await rawClient(port);
  const n = MAX_BATCH_MESSAGES + 1000;
  c.sock.write(Buffer.concat(Array.from({ length: n }, (_, i) => frame(String(i + 1)))));
  await until(() => c.texts.length >= n, 10_000, `${n} replies`);
  expect(c.texts.length).toBe(n);
  expect(c.texts.every((t, i) => t === `ok ${i + 1}`)).toBe(true);
  c.sock.destroy();
});

test("a client that sends and closes: on_message for each message, then on_close", async () => {
  const { port, url } = await startEngine(ENTRY);
  const c = await rawClient(port);
  // The messages and the close frame in one write: read together.
  c.sock.write(Buffer.concat([frame("m1"), frame("m2"), frame("m3"), Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])]));
  await until(c.closed, 5000, "the server to close");
  const observer = await Client.open(url);
  // Read after its close frame, nothing can go back to it: the sends say so.
  expect(await observer.ask("report")).toBe("m1=client not found m2=client not found m3=client not found on_close");
});

test("conn:close() in a callback: the messages read with it are not delivered (counted, logged); others are answered", async () => {
  const { port, url, engine } = await startEngine(ENTRY);
  const other = await rawClient(port);
  const c = await rawClient(port);
  other.sock.write(Buffer.concat([frame("1"), frame("2")]));
  c.sock.write(Buffer.concat([frame("m1"), frame("close"), frame("m3"), frame("m4")]));
  other.sock.write(Buffer.concat([frame("3"), frame("4")]));
  await until(c.closed, 5000, "the server to close");
  await until(() => other.texts.length === 4, 5000, "the other client's replies");
  expect(other.texts).toEqual(["ok 1", "ok 2", "ok 3", "ok 4"]);
  expect(c.texts).toEqual(["m1"]);
  const observer = await Client.open(url);
  expect(await observer.ask("report")).toBe("m1=nil close on_close");
  // (what /metrics shows as connmix_engine_servers_dropped_messages_total{reason="after_close"})
  expect(engine.node.droppedMessages().after_close.websocket).toBe(2);
  expect(readLog()).toMatch(/\tINFO\t[^\t]+\tclient \d+: 2 message\(s\) read with the engine's close of it were not delivered/);
  other.sock.destroy();
});

const HELD = `
function on_message(msg, conn)
  local d = msg.data
  if d == "join" then conn:subscribe("room") return conn:send("joined") end
  if d == "pub" then
    conn:send("before")
    mix.mesh.publish("room", "published")
    return conn:send("after")
  end
  if d == "bytes" then
    local function send(i) conn:send(string.rep(string.char(i, 255 - i), 1000), "binary") end
    send(0) send(1) send(2)
    -- The strings are garbage now: collected, their memory is given to new ones, which a held view would show.
    collectgarbage()
    local others = {}
    for j = 1, 20 do others[j] = string.rep(string.char(j + 100, j + 100), 1000) end
    return
  end
  -- a publication, a subscription change, another publication
  if d == "sub2" or d == "unsub" then
    local sub = d == "sub2"
    local ch = sub and "r2" or "room"
    mix.mesh.publish(ch, sub and "early" or "before")
    if sub then conn:subscribe(ch) else conn:unsubscribe(ch) end
    mix.mesh.publish(ch, sub and "late" or "after")
    return conn:send("done")
  end
  if d == "join2" then conn:subscribe("r2") return conn:send("joined") end
  if d == "bye" then
    conn:send("one")
    conn:send("two")
    return conn:close()
  end
end
`;

test("held sends keep their place: before a publication that reaches the same client, and before a close", async () => {
  const { url } = await startEngine(HELD);
  const a = await Client.open(url);
  const b = await Client.open(url);
  expect(await a.ask("join")).toBe("joined");
  expect(await b.ask("join")).toBe("joined");
  a.send("pub");
  await a.waitFor(4);
  expect(a.received.slice(1)).toEqual(["before", "published", "after"]);
  await b.waitFor(2);
  expect(b.received[1]).toBe("published");
  b.send("bye");
  expect(await b.waitClosed(5000)).toEqual({ code: 1000, reason: "" });
  expect(b.received.slice(2)).toEqual(["one", "two"]);
});

test("held binary sends keep their bytes after Lua collects the strings", async () => {
  const { url } = await startEngine(HELD);
  const c = await Client.open(url);
  c.send("bytes");
  await c.waitFor(3);
  for (let i = 0; i < 3; i++) {
    const want = Buffer.alloc(2000);
    for (let j = 0; j < 2000; j += 2) [want[j], want[j + 1]] = [i, 255 - i];
    expect(Buffer.from(c.received[i] as Buffer).equals(want)).toBe(true);
  }
});

test("held publications keep their place around subscription changes", async () => {
  const { url } = await startEngine(HELD);
  const [a, b] = [await Client.open(url), await Client.open(url)];
  b.send("join2");
  await b.waitFor(1);
  a.send("sub2"); // publishes "early", subscribes, publishes "late"
  await a.waitFor(2);
  await b.waitFor(3);
  expect(a.received).toEqual(["late", "done"]);
  expect(b.received).toEqual(["joined", "early", "late"]);
  a.send("join");
  b.send("join");
  await a.waitFor(3);
  await b.waitFor(4);
  a.send("unsub"); // publishes "before", unsubscribes, publishes "after"
  await a.waitFor(5);
  await b.waitFor(6);
  expect(a.received.slice(3)).toEqual(["before", "done"]);
  expect(b.received.slice(4)).toEqual(["before", "after"]);
});
