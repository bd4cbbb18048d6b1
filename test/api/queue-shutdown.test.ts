// SIGTERM with items queued, on a real `connmix dev` process: the Lua servers stop taking work, connected
// consumers get engine.luavm.queue.shutdownTimeout to take what is queued, and what is left is logged with its
// count (dropped, in memory). Counted end to end: every pushed item was taken or is counted as left.
import { afterAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ClusterDir, Node } from "../cluster/helpers.ts";
import { cleanupAll } from "../helpers/files.ts";
import { Client } from "../helpers/ws.ts";

afterAll(cleanupAll);

const ENTRY = `
function on_message(msg, conn)
  local topic, count = msg.data:match("^fill (%S+) (%d+)$")
  for i = 1, tonumber(count) do
    local _, err = mix.queue.push(topic, string.format("%06d", i))
    if err then return conn:send("err " .. err) end
  end
  conn:send("ok")
end
`;

async function start(): Promise<{ node: Node; lua: number; api: number; dir: ClusterDir }> {
  const dir = new ClusterDir();
  writeFileSync(join(dir.dir, "lua/entry.lua"), ENTRY);
  const [config, ports] = dir.dev(["luavm: { queue: { topicSize: 10000, shutdownTimeout: 3 } }"]);
  const node = new Node("dev", config, dir.dir, "1");
  await node.waitFor(/start the lua server/, 20_000);
  return { node, lua: ports.lua, api: ports.api, dir };
}

async function fill(lua: number, topic: string, count: number): Promise<void> {
  const c = await Client.open(`ws://127.0.0.1:${lua}/chat`);
  expect(await c.ask(`fill ${topic} ${count}`, 10_000)).toBe("ok");
  c.close();
}

test("SIGTERM with 10 items and no consumer: they are logged as dropped, with their count; exit 0", async () => {
  const { node, lua } = await start();
  await fill(lua, "lonely", 10);
  const t0 = performance.now();
  expect(await node.stop("SIGTERM", 15_000)).toBe(0);
  expect(performance.now() - t0).toBeLessThan(5000); // no consumer: nothing to wait for
  expect(node.messages()).toContain("shutdown: 10 queue items left in memory, dropped (lonely: 10)");
}, 60_000);

test("SIGTERM with a slow consumer: it gets shutdownTimeout to take items; every item is taken or counted as left", async () => {
  const { node, lua, api } = await start();
  await fill(lua, "work", 500);
  const consumer = await Client.open(`ws://127.0.0.1:${api}/ws/v1`);
  expect((await consumer.call("queue.pop", { t: ["work"], ack: true, w: 10 })).E).toBeNull();
  // It acknowledges 10 items every 100 ms: about 300 in the 3 s it is given.
  const taken: number[] = [];
  const timer = setInterval(() => {
    const events = consumer.received.splice(0).map((m) => JSON.parse(String(m))).filter((m) => m.e === "queue.pop");
    if (events.length === 0) return;
    taken.push(...events.map((ev) => Number(ev.p.d)));
    consumer.send({ m: "queue.ack", p: { k: events.map((ev) => ev.p.k) } });
  }, 100);
  await Bun.sleep(300);
  const from = node.mark();
  const stopped = node.stop("SIGTERM", 20_000);
  await node.waitFor(/shutdown: \d+ queue items waiting, consumers get up to 3s to take them/, 5000, from);
  expect(await stopped).toBe(0);
  clearInterval(timer);
  const [, left] = node.out.slice(from).match(/shutdown: (\d+) queue items left in memory, dropped \(work: \d+\)/) ?? [];
  // Every item was taken (acknowledged) or counted as left: none lost without a word. An item whose ack was
  // on its way when the API closed is both (at-least-once): at most the window of 10.
  expect(new Set(taken).size).toBe(taken.length);
  expect(taken.length).toBeGreaterThan(50);
  expect(taken.length + Number(left)).toBeGreaterThanOrEqual(500);
  expect(taken.length + Number(left)).toBeLessThanOrEqual(510);
  expect((await consumer.waitClosed()).code).toBe(1001);
}, 60_000);
