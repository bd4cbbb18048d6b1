// The README command of each example with programs of its own, or none, run as written (in a working
// directory like the repository root, on free ports), exercised briefly over real WebSockets and the
// HTTP API, and stopped with SIGTERM. examples/chat-room has its own file (it drives a browser).
import { afterAll, describe, expect, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { cleanupAll } from "../helpers/files.ts";
import { post } from "../helpers/http.ts";
import { listening } from "../helpers/ports.ts";
import { Client } from "../helpers/ws.ts";
import { processesIn, runExample, startExample, type RunningExample } from "./workspace.ts";

afterAll(cleanupAll);

/** Stops the example as Ctrl-C would and checks that nothing is left listening. */
async function stop(example: RunningExample): Promise<void> {
  expect(await example.proc.stop("SIGINT")).toBe(0);
  expect(processesIn(example.dir)).toEqual([]);
  for (const port of [...example.ports.servers, example.ports.api, example.ports.registry]) expect(await listening(port)).toBe(false);
}

describe("examples/video-comments", () => {
  test("viewers of a video get each other's comments and the backend's messages; other videos do not", async () => {
    const ex = await runExample("video-comments", "start the lua server");
    expect(ex.command).toBe("bin/connmix single -f examples/video-comments/connmix.yaml");
    const [ann, bob, other] = await Promise.all([Client.open(ex.url), Client.open(ex.url), Client.open(ex.url)]);
    for (const [c, channel] of [[ann, "100001@video"], [bob, "100001@video"], [other, "200002@video"]] as const) {
      c.send({ op: "subscribe", channel });
      expect(await c.json()).toEqual({ op: "subscribe", status: "success" });
    }
    ann.send({ op: "comment", channel: "100001@video", nick: "ann", msg: "nice!" });
    const comment = await bob.json();
    expect(comment).toMatchObject({ channel: "100001@video", nick: "ann", msg: "nice!" });
    expect(await ann.until((m) => m.op === "comment")).toEqual({ op: "comment", status: "success" });

    const d = JSON.stringify({ channel: "100001@video", nick: "system", msg: "welcome" });
    expect(await post(`${ex.api}/v1/mesh/publish`, { c: "video:100001", d })).toEqual({ E: null, r: { s: 2, f: 0 } });
    expect(await bob.next()).toBe(d);
    expect(await ann.until((m) => m.nick === "system")).toEqual(JSON.parse(d));

    bob.send({ op: "comment", channel: "200002@video", msg: "not watching" });
    expect(await bob.json()).toEqual({ op: "comment", status: "error", msg: "subscribe to 200002@video first" });
    bob.send({ op: "subscribe", channel: "1@audio" });
    expect(await bob.json()).toEqual({ op: "subscribe", status: "error", msg: "unknown channel type: audio" });
    bob.send({ op: "comment", channel: "100001@video", msg: "x".repeat(201) });
    expect((await bob.json()).msg).toBe("comment longer than 200 bytes");
    expect(other.received.map((m) => JSON.parse(String(m)))).toEqual([{ op: "subscribe", status: "success" }]); // nothing from 100001
    await stop(ex);
  }, 30_000);
});

describe("examples/exchange", () => {
  test("public streams for anyone, private ones after auth with the publisher's token", async () => {
    const ex = await runExample("exchange", "publishing through");
    expect(ex.command).toBe("node_modules/.bin/bun examples/run.ts examples/exchange");
    const token = /demo login: \{"op":"auth","token":"([^"]+)"\}/.exec(ex.proc.out)![1]!;
    expect(token).toBe(`10001.${createHash("md5").update("10001:change-me").digest("hex")}`);

    const c = await Client.open(ex.url);
    c.send({ op: "subscribe", args: ["BTCUSDT@ticker", "ethusdt@depth"] });
    expect(await c.until((m) => m.op === "subscribe")).toEqual({ op: "subscribe", status: "success", args: ["btcusdt@ticker", "ethusdt@depth"] });
    const ticker = await c.until((m) => m.stream === "btcusdt@ticker");
    expect(Object.keys(ticker.data).sort()).toEqual(["c", "h", "l", "t", "v"]);
    const depth = await c.until((m) => m.stream === "ethusdt@depth");
    expect(depth.data.bids).toHaveLength(5);

    c.send({ op: "subscribe", args: ["btcusdt@trades", "@balance"] });
    expect(await c.until((m) => m.op === "subscribe")).toEqual({ op: "subscribe", status: "error", msg: "@balance needs auth" });
    c.send({ op: "auth", token: token.replace(/.$/, (x) => (x === "0" ? "1" : "0")) });
    expect(await c.until((m) => m.op === "auth")).toEqual({ op: "auth", status: "error", msg: "invalid token" });
    c.send({ op: "auth", token });
    expect(await c.until((m) => m.op === "auth")).toEqual({ op: "auth", status: "success", uid: "10001" });
    c.send({ op: "subscribe", args: ["10002@order"] });
    expect(await c.until((m) => m.op === "subscribe")).toEqual({ op: "subscribe", status: "error", msg: "10002@order is not yours" });
    c.send({ op: "subscribe", args: ["@balance"] });
    expect(await c.until((m) => m.op === "subscribe")).toEqual({ op: "subscribe", status: "success", args: ["10001@balance"] });
    const balance = await c.until((m) => m.stream === "10001@balance", 6000);
    expect(balance.data.asset).toBe("USDT");
    c.send({ op: "ping" });
    expect(await c.until((m) => m.op === "pong")).toEqual({ op: "pong" });
    // run.ts, connmix, publisher.ts; not connmix's workers (one per CPU, docs/multicore.md)
    const workers = processesIn(ex.dir).filter((p) => readFileSync(`/proc/${p}/cmdline`, "utf8").includes("__worker"));
    expect(processesIn(ex.dir).length - workers.length).toBe(3);
    await stop(ex);
  }, 30_000);
});

describe("examples/backend-chat", () => {
  test("login, broadcast and errors all come from the backend consuming queue chat", async () => {
    const ex = await runExample("backend-chat", "consuming queue chat");
    expect(ex.command).toBe("node_modules/.bin/bun examples/run.ts examples/backend-chat");
    const [alice, bob] = await Promise.all([Client.open(ex.url), Client.open(ex.url)]);

    alice.send({ op: "send", msg: "anyone?" });
    expect(await alice.json()).toEqual({ op: "send", status: "error", msg: "login first" });
    alice.send({ op: "login", name: "no spaces allowed" });
    expect(await alice.json()).toEqual({ op: "login", status: "error", msg: "name: 1-20 letters, digits or _" });
    // A refused login ends the wait: the same connection can log in, and a send right after the login
    // already carries the uid (the script holds it until the backend has answered).
    alice.send({ op: "login", name: "alice" });
    alice.send({ op: "send", msg: "first!" });
    expect(await alice.json()).toEqual({ op: "login", status: "success", uid: "alice" });
    expect(await alice.json()).toEqual({ op: "joined", name: "alice" });
    expect(await alice.json()).toEqual({ op: "message", from: "alice", msg: "first!" });

    bob.send({ op: "login", name: "bob" });
    expect(await bob.json()).toEqual({ op: "login", status: "success", uid: "bob" });
    expect(await alice.json()).toEqual({ op: "joined", name: "bob" });
    bob.send({ op: "send", msg: "hi alice" });
    for (const c of [alice, bob]) expect(await c.until((m) => m.op === "message")).toEqual({ op: "message", from: "bob", msg: "hi alice" });
    bob.send({ op: "login", name: "bob2" });
    expect(await bob.json()).toEqual({ op: "login", status: "error", msg: "already logged in as bob" });
    bob.send({ op: "dance" });
    expect(await bob.json()).toEqual({ op: "error", msg: "unknown op: dance" });
    await ex.proc.waitFor("login alice (client ", 5000); // the program's output arrives through a pipe
    await stop(ex);
  }, 30_000);
});

describe("examples/run.ts", () => {
  test("when connmix cannot start (its Lua port is taken), the example's program is stopped too and the exit code says so", async () => {
    let taken: TCPSocketListener | undefined;
    const ex = await startExample("backend-chat", (ports) => {
      taken = Bun.listen({ hostname: "127.0.0.1", port: ports.servers[0]!, socket: { data() {} } });
    });
    try {
      const code = await Promise.race([ex.proc.proc.exited, Bun.sleep(20_000).then(() => "still running")]);
      expect(code).toBe(1);
      expect(ex.proc.out).toMatch(/ERROR.*cannot listen on 127\.0\.0\.1:\d+/);
      // backend.ts had started (it runs in the workspace like everything else) and is gone now.
      expect(processesIn(ex.dir)).toEqual([]);
    } finally {
      taken?.stop(true);
    }
  }, 30_000);
});
