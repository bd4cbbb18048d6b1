// A client that keeps sending while its callback waits: its unprocessed messages are bounded (MAX_BACKLOG_BYTES,
// each message costing at least BACKLOG_EVENT_COST, and MAX_BACKLOG_EVENTS); past the bound the engine closes
// that connection (1008) and nobody else notices.
import { afterAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { MAX_BACKLOG_BYTES } from "../../src/lua/scheduler";
import { cleanupAll } from "../helpers/files";
import { captureLog } from "../helpers/log";
import { startEngine } from "../helpers/engine";
import { Client } from "../helpers/ws";
import { until } from "../helpers/wait";

afterAll(cleanupAll);
const readLog = captureLog();

const ENTRY = `
function on_message(msg, conn)
  if msg.data == "wait" then conn:wait_context_value("never") return end
  conn:send(msg.data)
end
function on_close(id, err) mix.log(mix.INFO, "closed " .. id .. " " .. tostring(err)) end
`;

test("a flood behind a waiting callback closes that connection with 1008; others keep working", async () => {
  const { url } = await startEngine(ENTRY);
  const flooder = await Client.open(url);
  const other = await Client.open(url);
  flooder.send("wait");
  const chunk = "x".repeat(64 * 1024);
  const chunks = Math.ceil(MAX_BACKLOG_BYTES / chunk.length) + 4;
  for (let i = 0; i < chunks; i++) flooder.send(chunk);
  expect(await flooder.waitClosed(5000)).toEqual({ code: 1008, reason: "too many unprocessed messages" });
  expect(await other.ask("still here")).toBe("still here");
  await until(() => readLog().includes(" too many unprocessed messages"), 3000, "on_close with the reason");
  expect(readLog()).toMatch(/\tWARN\t[^\t]+\tclient \d+ sent more than 4194304 bytes or 16384 messages while its callback waited, closed/);
  expect(readLog()).toMatch(/\tINFO\t[^\t]+\tclosed \d+ too many unprocessed messages/);
});

/** Upgrades a raw TCP connection to `path`, writes `frames` (already masked client frames), and resolves with the
 * close code the server sends (or -1 if it closes without one). */
function rawFlood(port: number, path: string, before: Buffer, frames: Buffer, count: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    let upgraded = false;
    sock.on("error", () => resolve(-1));
    sock.on("close", () => resolve(-1));
    sock.on("connect", () =>
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!buf.subarray(0, 13).toString().includes(" 101")) return reject(new Error(buf.toString()));
        upgraded = true;
        buf = buf.subarray(end + 4);
        sock.write(before);
        const write = (left: number): void => {
          while (left > 0) {
            left--;
            if (!sock.write(frames)) return void sock.once("drain", () => write(left));
          }
        };
        write(count);
      }
      // The server's close frame: 0x88, length, then the code.
      const at = buf.indexOf(0x88);
      if (at >= 0 && buf.length >= at + 4) {
        resolve(buf.readUInt16BE(at + 2));
        sock.destroy();
      }
    });
  });
}

/** A masked client text frame of `payload` (under 126 bytes). */
const frame = (payload: string) => {
  const p = Buffer.from(payload);
  return Buffer.concat([Buffer.from([0x81, 0x80 | p.length, 0, 0, 0, 0]), p]); // mask 0: bytes unchanged
};

test("2 000 000 empty frames behind a waiting callback: closed with 1008, memory stays flat", async () => {
  const { port } = await startEngine(ENTRY);
  const other = await Client.open(`ws://127.0.0.1:${port}/chat`);
  Bun.gc(true);
  const rss = process.memoryUsage.rss();
  // 2 000 000 empty text frames, written 10 000 at a time.
  const code = await rawFlood(port, "/chat", frame("wait"), Buffer.concat(Array.from({ length: 10_000 }, () => frame(""))), 200);
  expect(code).toBe(1008);
  expect(process.memoryUsage.rss() - rss).toBeLessThan(64 * 1024 * 1024);
  expect(await other.ask("still here")).toBe("still here");
  expect(readLog()).toMatch(/client \d+ sent more than 4194304 bytes or 16384 messages while its callback waited, closed/);
}, 60_000);

test("a backlog under the bound is delivered in order once the callback is released", async () => {
  const { url, engine } = await startEngine(`
    function on_message(msg, conn)
      if msg.data == "wait" then
        conn:send("id " .. conn:client_id())
        conn:send("woke " .. conn:wait_context_value("go"))
        return
      end
      conn:send(msg.data)
    end`);
  const c = await Client.open(url);
  c.send("wait");
  const id = Number(String(await c.next()).slice(3));
  for (let i = 0; i < 50; i++) c.send(String(i));
  await Bun.sleep(100);
  expect(c.received).toHaveLength(1); // only the id: the 50 wait behind the blocked callback
  expect(engine.node.callLocal(id, "set_context_value", ["go", "now"])).toBeNull();
  await c.waitFor(52);
  expect(c.received.slice(1)).toEqual(["woke now", ...Array.from({ length: 50 }, (_, i) => String(i))]);
  expect(c.closed).toBeNull();
});
