// Queue delivery that loses nothing without a word, counted end to end: acknowledged consumers (queue.pop with
// "ack": true, queue.ack, at most "w" in flight, unacknowledged items back at the head of their topic when the
// consumer goes away), and consumers without acks (the PHP client's bare-list pop), whose unconfirmed items
// are counted in connmix_engine_queue_dropped_total and logged when they vanish.
import { afterAll, describe, expect, test } from "bun:test";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { Client } from "../helpers/ws.ts";
import { PausableClient, startTestEngine, useTestEngine, type TestEngine } from "./helpers";

afterAll(cleanupAll);
const readLog = captureLog();

// "fill <topic> <count> <bytes>": pushes count items "000001xxx..." to the topic and answers "ok <waiting>".
const ENTRY = `
function on_message(msg, conn)
  local topic, count, size = msg.data:match("^fill (%S+) (%d+) (%d+)$")
  local n, err
  for i = 1, tonumber(count) do
    n, err = mix.queue.push(topic, string.format("%06d", i) .. string.rep("x", tonumber(size)))
    if err then return conn:send("err " .. i .. ": " .. err) end
  end
  conn:send("ok " .. n)
end
`;

const e = useTestEngine(ENTRY, { queue: { topicSize: 20_000, maxTopics: 100 } });

async function fill(engine: TestEngine, topic: string, count: number, bytes = 16): Promise<string> {
  const c = await Client.open(engine.chatUrl);
  const report = String(await c.ask(`fill ${topic} ${count} ${bytes}`, 20_000));
  c.close();
  return report;
}

/** The item numbers of queue events (their first 6 characters of data). */
const seqOf = (events: { p: { d: string } }[]) => events.map((ev) => Number(ev.p.d.slice(0, 6)));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function metric(engine: TestEngine, line: RegExp): Promise<number> {
  const text = await (await fetch(`${engine.apiUrl}/metrics`)).text();
  const m = line.exec(text);
  return m ? Number(m[1]) : 0;
}

/** Takes `n` queue events from `c` (parsed), skipping the answers to acks. */
async function events(c: Client, n: number, ms = 10_000): Promise<any[]> {
  const out = [];
  while (out.length < n) {
    const m = await c.json(ms);
    if (m.e === "queue.pop") out.push(m);
    else expect(m.E).toBeNull();
  }
  return out;
}

describe("acknowledged delivery", () => {
  test("at most w in flight; acks let more through; every item is acknowledged exactly once", async () => {
    const backend = await Client.open(e.apiWs);
    expect(await backend.call("queue.pop", { t: ["acked"], ack: true, w: 10 }, 1)).toEqual({ E: null, r: { s: true }, i: 1 });
    expect(await fill(e, "acked", 300)).toMatch(/^ok \d+$/);
    const first = await events(backend, 10);
    expect(first.every((ev) => typeof ev.p.k === "string")).toBe(true);
    await Bun.sleep(100);
    expect(backend.received.length).toBe(10); // w = 10 events, no more (call() took the reply)
    expect(e.engine.node.queues.size("acked")).toBe(290);
    const inflight = () => e.engine.node.queues.list().find((t) => t.topic === "acked")?.inflight ?? 0;
    const acked: number[] = [];
    const ack = (ev: any) => {
      acked.push(Number(ev.p.d.slice(0, 6)));
      backend.send({ m: "queue.ack", p: { k: [ev.p.k] } });
    };
    for (const ev of first) ack(ev);
    while (acked.length < 300) {
      const m = await backend.json(10_000);
      expect(inflight()).toBeLessThanOrEqual(10);
      if (m.e === "queue.pop") ack(m);
      else expect(m).toEqual({ E: null, r: { s: true, n: 1 }, i: null });
    }
    expect(acked).toEqual(range(1, 300));
    expect(e.engine.node.queues.size("acked")).toBe(0);
    await until(() => e.engine.node.queues.list().find((t) => t.topic === "acked")?.inflight === 0 || !e.engine.node.queues.list().some((t) => t.topic === "acked"));
    backend.close();
  }, 60_000);

  test("a consumer that dies with items unacknowledged: they come back first, in order, to the next one; 0 lost", async () => {
    const first = await PausableClient.open(e.api.port, "/ws/v1");
    first.send(JSON.stringify({ m: "queue.pop", p: { t: ["crash"], ack: true, w: 50 }, i: 1 }));
    await until(() => first.messages.length === 1);
    expect(await fill(e, "crash", 5000, 200)).toMatch(/^ok \d+$/);
    await until(() => first.messages.length === 51, 10_000, "w = 50 events");
    const got = first.messages.slice(1).map((m) => JSON.parse(m));
    expect(seqOf(got)).toEqual(range(1, 50));
    // It acknowledges the first 20 (which lets 20 more through), then crashes without a close frame.
    first.send(JSON.stringify({ m: "queue.ack", p: { k: got.slice(0, 20).map((ev) => ev.p.k) }, i: 2 }));
    await until(() => first.messages.some((m) => JSON.parse(m).i === 2), 5000, "the ack's answer");
    expect(JSON.parse(first.messages.find((m) => JSON.parse(m).i === 2)!)).toEqual({ E: null, r: { s: true, n: 20 }, i: 2 });
    const redelivered = await metric(e, /^connmix_engine_queue_redelivered_total (\d+)$/m);
    await until(() => first.messages.length === 1 + 50 + 1 + 20, 5000, "20 more events");
    first.close();
    await until(() => e.engine.node.queues.size("crash") === 5000 - 20, 5000, "50 items back in the topic");
    expect(await metric(e, /^connmix_engine_queue_redelivered_total (\d+)$/m)).toBe(redelivered + 50);
    expect(readLog()).toMatch(/api connection 127\.0\.0\.1 went away \(consumer_gone\) with 50 unacknowledged queue items, returned to the head of their topics \(crash: 50\)/);
    // The next consumer gets items 21.. in order, the 50 returned ones first.
    const second = await Client.open(e.apiWs);
    expect((await second.call("queue.pop", { t: ["crash"], ack: true, w: 500 })).E).toBeNull();
    const seen: number[] = [];
    while (seen.length < 5000 - 20) {
      const batch = await events(second, Math.min(500, 5000 - 20 - seen.length));
      seen.push(...seqOf(batch));
      second.send({ m: "queue.ack", p: { k: batch.map((ev) => ev.p.k) } });
    }
    expect(seen).toEqual(range(21, 5000));
    second.close();
  }, 60_000);

  test("writeTimeout drops a stalled acknowledged consumer; its items go to the next one", async () => {
    const quick = await startTestEngine(ENTRY, {
      queue: { topicSize: 5000, maxTopics: 10 },
      edit: (cfg) => {
        cfg.engine.apiServer.writeTimeout = 1;
        cfg.engine.luavm.callbackTimeout = 20_000; // 600 pushes of 64 KiB in one callback, on a loaded machine
      },
    });
    try {
      const stalled = await PausableClient.open(quick.api.port, "/ws/v1");
      stalled.send(JSON.stringify({ m: "queue.pop", p: { t: ["slow"], ack: true, w: 1000 }, i: 1 }));
      await until(() => stalled.messages.length === 1);
      stalled.pause();
      // 600 items of 64 KiB: far more than the socket buffers hold, so writes back up.
      expect(await fill(quick, "slow", 600, 65536)).toMatch(/^ok \d+$/);
      await until(() => readLog().includes("did not read for 1s, dropped"), 10_000, "the writeTimeout drop");
      await until(() => quick.engine.node.queues.size("slow") === 600, 5000, "every item back in the topic");
      expect(readLog()).toMatch(/went away \(write_timeout\) with \d+ unacknowledged queue items, returned/);
      const next = await Client.open(quick.apiWs);
      expect((await next.call("queue.pop", { t: ["slow"], ack: true, w: 100 })).E).toBeNull();
      const seen: number[] = [];
      while (seen.length < 600) {
        const batch = await events(next, 100);
        seen.push(...seqOf(batch));
        next.send({ m: "queue.ack", p: { k: batch.map((ev) => ev.p.k) } });
      }
      expect(seen).toEqual(range(1, 600));
      stalled.close();
      next.close();
    } finally {
      await quick.stop();
    }
  }, 60_000);

  test("bad ack requests are 101 errors", async () => {
    const plain = await Client.open(e.apiWs);
    expect((await plain.call("queue.ack", { k: ["1"] })).E).toEqual({ c: 101, m: 'queue.ack needs a queue.pop with "ack": true first' });
    expect((await plain.call("queue.pop", ["p1"])).E).toBeNull();
    expect((await plain.call("queue.pop", { t: ["p2"], ack: true })).E).toEqual({ c: 101, m: "this connection already consumes without ack" });
    expect((await plain.call("queue.pop", { t: ["p3"], w: 0 })).E).toEqual({ c: 101, m: "w must be an integer from 1 to 10000, got 0" });
    expect((await plain.call("queue.ack", { k: "1" })).E).toEqual({ c: 101, m: 'p must be {"k": ["key", ...]}' });
    expect((await plain.call("queue.ack", { k: ["x"] })).E).toEqual({ c: 101, m: 'invalid key: "x"' });
    plain.close();
  });
});

describe("consumers without acks", () => {
  test("the PHP client's bare-list pop: a consumer that stops reading holds at most its window; when it is killed those are counted as dropped and logged, the rest go to the next consumer", async () => {
    const before = await metric(e, /^connmix_engine_queue_dropped_total\{topic="php",reason="consumer_gone"\} (\d+)$/m);
    const php = await PausableClient.open(e.api.port, "/ws/v1");
    php.send(JSON.stringify({ m: "queue.pop", p: ["php"], i: 1 }));
    await until(() => php.messages.length === 1);
    php.pause();
    expect(await fill(e, "php", 5000, 200)).toMatch(/^ok \d+$/);
    // At most the window (100) left the engine for it; everything else waits in the topic.
    await until(() => e.engine.node.queues.size("php") === 4900, 5000, "4900 waiting");
    await Bun.sleep(200);
    expect(e.engine.node.queues.size("php")).toBe(4900);
    php.close(); // killed: no close frame, nothing it read was confirmed
    await until(() => readLog().includes("with 100 queue items it may not have read, dropped (php: 100)"), 5000, "the drop in the log");
    expect(await metric(e, /^connmix_engine_queue_dropped_total\{topic="php",reason="consumer_gone"\} (\d+)$/m)).toBe(before + 100);
    const next = await Client.open(e.apiWs);
    next.send({ m: "queue.pop", p: ["php"], i: 2 });
    await next.waitFor(4901, 20_000);
    expect(seqOf(next.received.slice(1).map((m) => JSON.parse(String(m))))).toEqual(range(101, 5000));
    next.close();
  }, 60_000);

  test("a consumer that reads everything confirms it through pongs: nothing is counted as dropped when it leaves", async () => {
    const before = await metric(e, /^connmix_engine_queue_dropped_total\{topic="fine",reason="consumer_gone"\} (\d+)$/m);
    const c = await Client.open(e.apiWs);
    expect((await c.call("queue.pop", ["fine"])).E).toBeNull();
    expect(await fill(e, "fine", 3000)).toMatch(/^ok \d+$/);
    await c.waitFor(3000, 20_000);
    expect(seqOf(c.received.map((m) => JSON.parse(String(m))))).toEqual(range(1, 3000));
    await until(() => !e.engine.node.queues.list().some((t) => t.topic === "fine" && t.inflight > 0), 5000, "every item confirmed");
    c.close();
    await Bun.sleep(100);
    expect(await metric(e, /^connmix_engine_queue_dropped_total\{topic="fine",reason="consumer_gone"\} (\d+)$/m)).toBe(before);
  }, 60_000);

  test("a topic named by a client's data is escaped in the log line of a consumer that went away", async () => {
    const topic = "t\x1b[2J\x07"; // an ANSI clear-screen and a bell: not whitespace, so the script takes it
    const c = await PausableClient.open(e.api.port, "/ws/v1");
    c.send(JSON.stringify({ m: "queue.pop", p: { t: [topic], ack: true }, i: 1 }));
    await until(() => c.messages.length === 1);
    expect(await fill(e, topic, 1)).toMatch(/^ok \d+$/);
    await until(() => c.messages.length === 2, 5000, "the event");
    c.close();
    await until(() => readLog().includes("returned to the head of their topics (t\\x1b[2J\\x07: 1)"), 5000, "the escaped topic in the log");
    expect(readLog()).not.toContain("\x1b");
  });
});
