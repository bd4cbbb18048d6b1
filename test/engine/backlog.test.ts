// A client that keeps sending while its callback waits: its unprocessed messages are bounded
// (MAX_BACKLOG_BYTES); past the bound the engine closes that connection (1008) and nobody else notices.
import { afterAll, expect, test } from "bun:test";
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
  expect(readLog()).toMatch(/\tWARN\t[^\t]+\tclient \d+ sent more than 4194304 bytes while its callback waited, closed/);
  expect(readLog()).toMatch(/\tINFO\t[^\t]+\tclosed \d+ too many unprocessed messages/);
});

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
