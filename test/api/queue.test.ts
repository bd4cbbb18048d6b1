// Queues end to end: Lua pushes (mix.queue.push), backends consume over /ws/v1 (queue.pop/unpop), the
// backend-login flow (conn.call set_context_value releasing wait_context_value), limits, sharing,
// reconnects and a consumer that stops reading.
import { describe, expect, test } from "bun:test";
import { until } from "../helpers/wait.ts";
import { Client } from "../helpers/ws.ts";
import { idClient, PausableClient, startTestEngine, useTestEngine } from "./helpers";

// "login <name>": push the frame to "chat" and wait for the backend to set uid.
// "push <topic> <data>": push and report "ok <n>" or "err: <err>". "table": push a table to "t".
// "many <count> <bytes>": push count items of that size to "big", reporting the last n and any error.
const ENTRY = `
function on_message(msg)
  local conn = mix.websocket()
  local d = msg.data
  if d == "id" then return conn:send(string.format("%.0f", conn:client_id())) end
  if d:sub(1, 6) == "login " then
    local _, err = mix.queue.push("chat", d)
    if err then return conn:send("push failed: " .. err) end
    local uid = conn:wait_context_value("uid")
    return conn:send("welcome " .. tostring(uid))
  end
  if d == "table" then
    local _, err = mix.queue.push("t", { op = "x", list = { 1, 2 } })
    return conn:send(err or "pushed")
  end
  local count, size = d:match("^many (%d+) (%d+)$")
  if count then
    local n, err
    for i = 1, tonumber(count) do
      n, err = mix.queue.push("big", string.format("%06d", i) .. string.rep("x", tonumber(size)))
      if err then break end
    end
    return conn:send(err and ("err: " .. err) or ("ok " .. n))
  end
  local topic, data = d:match("^push (%S+) (.*)$")
  if topic then
    local n, err = mix.queue.push(topic, data)
    return conn:send(err and ("err: " .. err) or ("ok " .. n))
  end
end
`;

const e = useTestEngine(ENTRY);

const chatClient = () => idClient(e.chatUrl);

/** Sends "push <topic> <data>" and returns the script's report. */
async function push(c: Client, topic: string, data: string): Promise<string> {
  c.send(`push ${topic} ${data}`);
  return String(await c.next());
}

const OK = { E: null, r: { s: true } };
// `n`: the index of the engine that queued the item (the one its client id carries), a JSON number.
const event = (client: string, t: string, d: unknown) => ({ e: "queue.pop", p: { n: e.engine.node.index, c: client, t, d }, id: null });

describe("queue.pop", () => {
  test("backend login: the consumer gets the frame, conn.call set_context_value releases wait_context_value", async () => {
    const backend = await Client.open(e.apiWs);
    expect(await backend.call("queue.pop", { t: ["chat"] }, 1)).toEqual({ ...OK, i: 1 });
    const [c, id] = await chatClient();
    c.send("login alice");
    const ev = await backend.json();
    expect(ev).toEqual(event(id, "chat", "login alice"));
    // The script is blocked in wait_context_value: nothing has been sent to the client yet.
    await Bun.sleep(50);
    expect(c.received.length).toBe(1);
    expect(await backend.call("mesh.send", { c: ev.p.c, d: "checking" }, 2)).toEqual({ ...OK, i: 2 });
    expect(await backend.call("conn.call", { c: ev.p.c, f: "set_context_value", a: ["uid", 42] }, 3)).toEqual({ ...OK, i: 3 });
    expect(await c.next()).toBe("checking");
    expect(await c.next()).toBe("welcome 42");
    backend.close();
    c.close();
  });

  test("items pushed before any consumer wait and follow the pop reply, in order; tables arrive as JSON", async () => {
    const [c, id] = await chatClient();
    expect(await push(c, "early", "one")).toBe("ok 1");
    expect(await push(c, "early", "two")).toBe("ok 2");
    c.send("table");
    expect(await c.next()).toBe("pushed");
    const backend = await Client.open(e.apiWs);
    // The bare-list form of p, as the PHP client sends it.
    backend.send({ m: "queue.pop", p: ["early", "t"], i: 9 });
    expect(await backend.json()).toEqual({ ...OK, i: 9 });
    const got = [await backend.json(), await backend.json(), await backend.json()];
    expect(got).toContainEqual(event(id, "early", "one"));
    expect(got).toContainEqual(event(id, "t", { op: "x", list: [1, 2] }));
    expect(got.findIndex((g) => g.p.d === "one")).toBeLessThan(got.findIndex((g) => g.p.d === "two"));
    backend.close();
    c.close();
  });

  test("a full topic and too many topics are errors in Lua; nothing is dropped", async () => {
    const small = await startTestEngine(ENTRY, { queue: { topicSize: 3, maxTopics: 3 } });
    try {
      const [c, id] = await idClient(small.chatUrl);
      for (let i = 1; i <= 3; i++) expect(await push(c, "full", String(i))).toBe(`ok ${i}`);
      expect(await push(c, "full", "4")).toBe("err: queue topic full is full (topicSize 3)");
      expect(await push(c, "extra1", "x")).toBe("ok 1");
      expect(await push(c, "extra2", "x")).toBe("ok 1");
      expect(await push(c, "extra3", "x")).toBe("err: too many queue topics (maxTopics 3)");
      // Topics only a consumer named hold nothing and do not count: they cannot starve the scripts' pushes.
      const squatter = await Client.open(small.apiWs);
      expect(await squatter.call("queue.pop", ["made-up1", "made-up2", "made-up3"], 1)).toEqual({ ...OK, i: 1 });
      expect(await squatter.call("queue.pop", ["made-up4"], 2)).toEqual({ E: { c: 201, m: "a connection consumes at most 3 topics (maxTopics)" }, i: 2 });
      const backend = await Client.open(small.apiWs);
      expect(await backend.call("queue.pop", { t: ["full", "extra1", "extra2"] }, 2)).toEqual({ ...OK, i: 2 });
      const got = [];
      for (let i = 0; i < 5; i++) got.push((await backend.json()).p);
      expect(got.filter((p) => p.t === "full").map((p) => p.d)).toEqual(["1", "2", "3"]);
      expect(got.filter((p) => p.t !== "full").map((p) => p.d)).toEqual(["x", "x"]);
      expect(small.engine.node.queues.size("full")).toBe(0);
      // A consumed topic takes pushes again, handed over at once.
      expect(await push(c, "full", "5")).toBe("ok 0");
      expect(await backend.json()).toEqual(event(id, "full", "5"));
      // Emptied topics no longer count: a script pushes to new ones again.
      expect(await push(c, "extra3", "x")).toBe("ok 1");
      expect(await push(c, "made-up1", "y")).toBe("ok 0");
      expect((await squatter.json()).p.d).toBe("y");
      squatter.close();
      backend.close();
      c.close();
    } finally {
      await small.stop();
    }
  });

  test("consumers of one topic share its items, each item goes to exactly one", async () => {
    const consumers = await Promise.all([1, 2, 3].map(() => Client.open(e.apiWs)));
    for (const b of consumers) expect((await b.call("queue.pop", { t: ["jobs"] })).E).toBeNull();
    const [c] = await chatClient();
    for (let i = 0; i < 30; i++) expect(await push(c, "jobs", `job${i}`)).toBe("ok 0");
    await until(() => consumers.reduce((n, b) => n + b.received.length, 0) === 30);
    const per = consumers.map((b) => b.received.map((t) => JSON.parse(String(t)).p.d as string));
    expect(per.map((l) => l.length)).toEqual([10, 10, 10]);
    expect(new Set(per.flat()).size).toBe(30);
    for (const b of consumers) b.close();
    c.close();
  });

  test("202 when already consuming, 203 when consuming nothing, 101 for bad topics", async () => {
    const backend = await Client.open(e.apiWs);
    expect(await backend.call("queue.pop", { t: ["a1"] }, 1)).toEqual({ ...OK, i: 1 });
    expect(await backend.call("queue.pop", { t: ["b1", "a1"] }, 2)).toEqual({ E: { c: 202, m: "already consuming topic a1" }, i: 2 });
    expect(await backend.call("queue.unpop", {}, 3)).toEqual({ ...OK, i: 3 });
    expect(await backend.call("queue.unpop", {}, 4)).toEqual({ E: { c: 203, m: "not consuming any topic" }, i: 4 });
    const shape = 'p must be {"t": ["topic", ...]} or a list of topics';
    expect((await backend.call("queue.pop", {})).E).toEqual({ c: 101, m: shape });
    expect((await backend.call("queue.pop", { t: "a1" })).E).toEqual({ c: 101, m: shape });
    expect((await backend.call("queue.pop", { t: [] })).E).toEqual({ c: 101, m: shape });
    expect((await backend.call("queue.pop", { t: ["ok", ""] })).E).toEqual({ c: 101, m: 'invalid topic: ""' });
    // After unpop the items wait again.
    const [c] = await chatClient();
    expect(await push(c, "a1", "kept")).toBe("ok 1");
    backend.close();
    c.close();
  });

  test("a consumer that disconnects and comes back loses nothing", async () => {
    const [c, id] = await chatClient();
    const first = await Client.open(e.apiWs);
    expect((await first.call("queue.pop", { t: ["r"] })).E).toBeNull();
    for (let i = 1; i <= 3; i++) expect(await push(c, "r", `m${i}`)).toBe("ok 0");
    for (let i = 1; i <= 3; i++) expect((await first.json()).p.d).toBe(`m${i}`);
    first.close();
    await until(() => first.closed !== null);
    for (let i = 4; i <= 6; i++) expect(await push(c, "r", `m${i}`)).toBe(`ok ${i - 3}`);
    const again = await Client.open(e.apiWs);
    expect((await again.call("queue.pop", ["r"])).E).toBeNull();
    for (let i = 4; i <= 6; i++) expect(await again.json()).toEqual(event(id, "r", `m${i}`));
    again.close();
    c.close();
  });
});

describe("backpressure", () => {
  test("a consumer that stops reading is handed no more than it takes; every item arrives once it reads again", async () => {
    const big = await startTestEngine(ENTRY, {
      edit: (cfg) => {
        cfg.engine.luavm.callbackTimeout = 20_000; // 600 pushes of 64 KiB in one callback, on a loaded machine
      },
    });
    try {
      const consumer = await PausableClient.open(big.api.port, "/ws/v1");
      consumer.send(JSON.stringify({ m: "queue.pop", p: { t: ["big"] }, i: 1 }));
      await until(() => consumer.messages.length === 1);
      consumer.pause();
      const c = await Client.open(big.chatUrl);
      // 600 items of 64 KiB: about 39 MB, far more than the socket buffers hold.
      c.send("many 600 65536");
      const report = String(await c.next(25_000)); // 39 MB pushed by one callback: seconds on a loaded machine
      expect(report).toMatch(/^ok \d+$/);
      const waiting = big.engine.node.queues.size("big");
      // Sends stop at the first backpressure, and at most the window (100) is in flight.
      expect(600 - waiting).toBeLessThanOrEqual(100);
      expect(Number(report.slice(3))).toBe(waiting);
      consumer.resume();
      await until(() => consumer.messages.length === 601, 20000);
      const seq = consumer.messages.slice(1).map((m) => Number(JSON.parse(m).p.d.slice(0, 6)));
      expect(seq).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
      expect(big.engine.node.queues.size("big")).toBe(0);
      consumer.close();
      c.close();
    } finally {
      await big.stop();
    }
  }, 60_000);
});
