// The TypeScript SDK (sdk/typescript) against a real cluster: discovery through the center, send,
// publish and conn.call with typed results and error codes, a queue consumer with backpressure that
// keeps consuming when an engine is killed with SIGKILL and started again.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Connmix, ConnmixError, CODE } from "../../sdk/typescript/index.ts";
import { SdkCluster, eventually } from "./cluster.ts";

const cluster = new SdkCluster();
let cm: Connmix;
const events: string[] = [];

beforeAll(async () => {
  await cluster.start();
  cm = new Connmix({ center: cluster.centerUrl, refreshMs: 200, backoffMinMs: 50, backoffMaxMs: 500, requestTimeoutMs: 5000, onEvent: (e, n) => events.push(`${e} ${n.api_server}`) });
  await cm.start();
  await eventually(() => cm.nodes().filter((n) => n.connected).length === 2, 10_000, "two engines connected");
}, 60_000);

afterAll(async () => {
  cm?.close();
  await cluster.stop();
});

describe("engines through the center", () => {
  test("both engines are listed and connected, one connection each", () => {
    const nodes = cm.nodes();
    expect(nodes.map((n) => n.api_server).sort()).toEqual(cluster.engines.map((e) => `127.0.0.1:${e.api}`).sort());
    expect(nodes.every((n) => n.connected && n.index > 0)).toBe(true);
    expect(events.filter((e) => e.startsWith("up ")).length).toBe(2);
  });
});

describe("send, publish, conn.call", () => {
  test("send reaches a client on either engine; binary data arrives as a binary frame", async () => {
    const [a, idA] = await cluster.client(0);
    const [b, idB] = await cluster.client(1);
    expect(await cm.send(idA, "to a")).toEqual({ s: true });
    expect(await cm.send(Number(idB), "to b")).toEqual({ s: true });
    expect(await a.next()).toBe("to a");
    expect(await b.next()).toBe("to b");
    await cm.send(idB, new Uint8Array([0, 1, 2, 255]));
    expect([...(await b.next() as Buffer)]).toEqual([0, 1, 2, 255]);
    a.close();
    b.close();
  });

  test("a send to a client that is gone fails with code 401", async () => {
    const [c, id] = await cluster.client(0);
    c.close();
    await eventually(async () => {
      const e = await cm.send(id, "x").then(() => null, (err) => err);
      return e instanceof ConnmixError && e.code === CODE.sendFailed;
    }, 5000, "send to a closed client fails");
    const err = await cm.send(id, "x").catch((e) => e);
    expect(err).toBeInstanceOf(ConnmixError);
    expect(err.code).toBe(401);
    expect(err.message).toContain(`client ${id} not found`);
  });

  test("publish counts subscribers on both engines; conn.call subscribes and releases a wait", async () => {
    const [a, idA] = await cluster.client(0);
    const [b, idB] = await cluster.client(1);
    expect(await a.ask("sub room:1")).toBe("subscribed room:1");
    expect(await cm.conn(idB).subscribe("room:1")).toEqual({ s: true });
    expect(await cm.publish("room:1", "hello")).toEqual({ s: 2, f: 0 });
    expect([await a.next(), await b.next()]).toEqual(["hello", "hello"]);
    b.send("wait uid");
    await Bun.sleep(50);
    expect(await cm.conn(idB).setContextValue("uid", 42)).toEqual({ s: true });
    expect(await b.next()).toBe("value 42");
    const bad = await cm.conn(idA).call("set_context_value").catch((e) => e);
    expect([bad.code, bad.message]).toEqual([CODE.callFailed, "set_context_value expects a key"]);
    const invalid = await cm.conn("abc").subscribe("x").catch((e) => e);
    expect(invalid.code).toBe(CODE.invalidArgument);
    a.close();
    b.close();
  });
});

describe("queue consumer", () => {
  test("backpressure: with a slow handler at most `window` items are unacknowledged; later items wait in the engine, then all arrive in order", async () => {
    const got: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const consumer = cm.consume<string>(["jobs"], async (item) => {
      await gate;
      got.push(item.d);
    }, { window: 8 });
    const metrics = async () => (await fetch(`http://127.0.0.1:${cluster.engines[0]!.api}/metrics`)).text();
    try {
      await eventually(async () => /connmix_engine_queue_consumers\{topic="jobs"\} 1/.test(await metrics()), 5000, "consumer popped on engine a");
      const [a] = await cluster.client(0);
      // The engine offers acks: it hands over no more than the window (8) unacknowledged items.
      for (let i = 0; i < 50; i++) a.send(`q job${i}`);
      await eventually(async () => /connmix_engine_queue_items\{topic="jobs"\} 42\n/.test(await metrics()), 5000, "42 items waiting in the engine");
      expect(await metrics()).toMatch(/connmix_engine_queue_unacked\{topic="jobs"\} 8\n/);
      expect(got).toEqual([]);
      release();
      await eventually(() => got.length === 50, 10_000, "all 50 items handled");
      expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `job${i}`));
      await eventually(() => consumer.stats.acked === 50, 5000, "all 50 acknowledged");
      expect(await metrics()).not.toMatch(/connmix_engine_queue_unacked\{topic="jobs"\} [1-9]/);
      a.close();
    } finally {
      await consumer.stop();
    }
  });

  test("backpressure without acknowledgements (ack: false): the consumer unpops; later items wait in the engine", async () => {
    const got: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // Its own client: a /ws/v1 connection keeps the ack mode of its first pop.
    const plain = new Connmix({ center: cluster.centerUrl, refreshMs: 200 });
    await plain.start();
    await eventually(() => plain.nodes().filter((n) => n.connected).length === 2, 10_000, "plain client connected");
    const consumer = plain.consume<string>(["jobs"], async (item) => {
      await gate;
      got.push(item.d);
    }, { window: 8, ack: false });
    const metrics = async () => (await fetch(`http://127.0.0.1:${cluster.engines[0]!.api}/metrics`)).text();
    try {
      await eventually(async () => /connmix_engine_queue_consumers\{topic="jobs"\} 1/.test(await metrics()), 5000, "consumer popped on engine a");
      const [a] = await cluster.client(0);
      for (let i = 0; i < 30; i++) a.send(`q job${i}`);
      await eventually(() => consumer.stats.paused > 0, 5000, "delivery paused");
      // The consumer is off engine a's topic now (queue.unpop): what the script pushes waits there.
      await eventually(async () => !/connmix_engine_queue_consumers\{topic="jobs"\} 1/.test(await metrics()), 5000, "unpopped");
      for (let i = 30; i < 50; i++) a.send(`q job${i}`);
      // At least those 20 wait (plus any of the first 30 the engine had not handed over yet).
      const waiting = async () => Number(/connmix_engine_queue_items\{topic="jobs"\} (\d+)\n/.exec(await metrics())?.[1] ?? 0);
      await eventually(async () => (await waiting()) >= 20, 5000, "20 items waiting in the engine");
      expect(got).toEqual([]);
      release();
      await eventually(() => got.length === 50, 10_000, "all 50 items handled");
      expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `job${i}`));
      expect(consumer.stats.acked).toBe(0);
      a.close();
    } finally {
      await consumer.stop();
      plain.close();
    }
  });

  test("an engine killed and restarted under a running consumer: it reconnects and consumes there again", async () => {
    const got: string[] = [];
    const consumer = cm.consume<string>(["jobs"], (item) => void got.push(`${item.c}:${item.d}`));
    await Bun.sleep(200);
    const [a, idA] = await cluster.client(0);
    const [b, idB] = await cluster.client(1);
    a.send("q a1");
    b.send("q b1");
    await eventually(() => got.length === 2, 5000, "items from both engines");
    await eventually(() => consumer.stats.acked === 2, 5000, "both acknowledged");
    const ups = events.filter((e) => e.startsWith("up ")).length;
    await cluster.engines[1]!.node.stop("SIGKILL");
    await eventually(() => events.some((e) => e.startsWith(`down 127.0.0.1:${cluster.engines[1]!.api}`)), 5000, "the SDK saw engine b go down");
    a.send("q a2"); // engine a keeps being consumed meanwhile
    await eventually(() => got.length === 3, 5000, "item from a while b is down");
    await cluster.restart(1);
    await eventually(() => events.filter((e) => e.startsWith("up ")).length > ups, 15_000, "the SDK reconnected to engine b");
    const [b2, idB2] = await cluster.client(1);
    b2.send("q b2");
    await eventually(() => got.length === 4, 10_000, "item from the restarted engine");
    expect(got.sort()).toEqual([`${idA}:a1`, `${idA}:a2`, `${idB}:b1`, `${idB2}:b2`].sort());
    expect(consumer.stats).toMatchObject({ handled: 4, failed: 0 });
    await eventually(() => consumer.stats.acked === 4, 5000, "the 4 items acknowledged");
    await consumer.stop();
    a.close();
    b2.close();
    void b;
  }, 60_000);
});
