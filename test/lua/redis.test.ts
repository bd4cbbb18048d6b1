// mix.redis from Lua against real redis-server processes this test starts on free loopback ports: every
// reply type, binary values, databases, passwords, pool settings, the server going down and coming back,
// and connections being served while one waits in a blocking command.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { defaultRedis, type RedisConfig } from "../../src/config/index.ts";
import { Parser, ReplyError, type Reply } from "../../src/redis/client.ts";
import type { Started } from "../helpers/engine.ts";
import { freePort } from "../helpers/ports.ts";
import { REDIS, RedisProcess } from "../helpers/redis.ts";
import { Client } from "../helpers/ws.ts";
import { bytes, evalLua, startServer } from "./eval";

if (!REDIS) {
  console.warn("\n!!! redis-server is not installed: SKIPPING test/lua/redis.test.ts (bin/setup --test installs it) !!!\n");
}

const plain = new RedisProcess(freePort());
const secured = new RedisProcess(freePort(), ["--requirepass", "s3cret"]);
const nobody = freePort();
const pool = (name: string, port: number, more: Partial<RedisConfig> = {}): RedisConfig => ({
  ...defaultRedis(), name, addr: `127.0.0.1:${port}`, minIdleConns: 0, ...more,
});

let server: Started;
let client: Client;

beforeAll(async () => {
  if (!REDIS) return;
  await Promise.all([plain.start(), secured.start()]);
  server = await startServer({
    redis: [
      pool("default", plain.port),
      pool("db2", plain.port, { db: 2 }),
      pool("two", plain.port, { poolSize: 2 }),
      pool("secured", secured.port, { password: "s3cret" }),
      pool("wrongpass", secured.port, { password: "nope" }),
      pool("nopass", secured.port),
      pool("warm", secured.port, { password: "s3cret", minIdleConns: 3, idleTimeout: 1 }),
      pool("down", nobody),
      pool("quick", plain.port, { readTimeout: 1 }),
    ],
  });
  client = await Client.open(server.url);
});

afterAll(async () => {
  if (!REDIS) return;
  client.close();
  await server.stop();
  await Promise.all([plain.kill(), secured.kill()]);
});

const run = (code: string) => evalLua(client, code);

describe("RESP parser", () => {
  test("replies split at every possible byte parse the same as in one piece", () => {
    const stream = Buffer.concat([
      Buffer.from("+OK\r\n-ERR bad thing\r\n:-42\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n"),
      Buffer.from("$4\r\n\r\n\0\xff\r\n", "latin1"),
      Buffer.from("*3\r\n*2\r\n:1\r\n$1\r\nx\r\n$-1\r\n-E1 inner\r\n+after\r\n$3\r\nend\r\n"),
    ]);
    const expected: Reply[] = [
      "OK", new ReplyError("ERR bad thing"), -42, null, null, [], new Uint8Array(0),
      new Uint8Array([13, 10, 0, 255]), [[1, new Uint8Array([0x78])], null, new ReplyError("E1 inner")], "after",
      new Uint8Array([0x65, 0x6e, 0x64]),
    ];
    const parse = (chunks: Buffer[]) => {
      const out: Reply[] = [];
      const p = new Parser((r) => out.push(r));
      for (const c of chunks) p.feed(c);
      return out;
    };
    expect(parse([stream])).toEqual(expected);
    expect(parse([...stream].map((b) => Buffer.from([b])))).toEqual(expected);
    for (let cut = 1; cut < stream.length; cut++) {
      expect(parse([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(expected);
    }
  });
});

describe.skipIf(!REDIS)("replies", () => {
  test("status, bulk, nil, integer and error replies", async () => {
    const r = await run(`
      local r = mix.redis.connection("default")
      local out = {}
      local function add(...) out[#out + 1] = { n = select("#", ...), ... } end
      add(r:command("set", "greeting", "hello"))
      add(r:command("get", "greeting"))
      add(r:command("get", "missing"))
      add(r:command("incr", "counter"))
      add(r:command("incrby", "counter", 41))
      add(r:command("incr", "greeting"))
      add(r:command("nosuchcommand", "x"))
      add(r:command("ping"))
      add(r:command("exists", "greeting", "missing"))
      return out`);
    expect(r[0]).toEqual([
      { n: 1, 1: "OK" },
      { n: 1, 1: "hello" },
      { n: 1 },
      { n: 1, 1: 1 },
      { n: 1, 1: 42 },
      { n: 2, 2: "ERR value is not an integer or out of range" },
      { n: 2, 2: "ERR unknown command 'nosuchcommand', with args beginning with: 'x' " },
      { n: 1, 1: "PONG" },
      { n: 1, 1: 1 },
    ]);
  });

  test("binary values keep every byte, in both directions", async () => {
    const [len, value, strlen] = await run(`
      local r = mix.redis.connection("default")
      local v = "\\0\\255\\128\\r\\n$3\\r\\nend"
      r:command("set", "bin", v)
      local got = r:command("get", "bin")
      return #got, got, r:command("strlen", "bin")`);
    expect(len).toBe(12);
    expect(bytes(value as string)).toEqual(Buffer.from([0, 255, 128, 13, 10, 0x24, 0x33, 13, 10, 0x65, 0x6e, 0x64]));
    expect(strlen).toBe(12);
  });

  test("arrays become tables: nested, with nil elements as false and error elements as {err=...}", async () => {
    const [list, hash, mget, nested, empty, withErr, status] = await run(`
      local r = mix.redis.connection("default")
      r:command("del", "l", "h")
      r:command("rpush", "l", "a", "b", "\\0")
      r:command("hset", "h", "f", "v")
      return r:command("lrange", "l", 0, -1),
        r:command("hgetall", "h"),
        r:command("mget", "l", "nokey", "greeting"),
        r:command("eval", "return {1, {2, 'x', {}}, 'y'}", 0),
        r:command("smembers", "nokey"),
        r:command("eval", "return {1, redis.error_reply('MYERR bad')}", 0),
        r:command("eval", "return redis.status_reply('FINE')", 0)`);
    expect(list).toEqual(["a", "b", "\u0000"]);
    expect(hash).toEqual(["f", "v"]);
    expect(mget).toEqual([false, false, "hello"]);
    expect(nested).toEqual([1, [2, "x", []], "y"]);
    expect(empty).toEqual([]);
    expect(withErr).toEqual([1, { err: "MYERR bad" }]);
    expect(status).toBe("FINE");
  });

  test("a 1 MB value and a 20000-element list arrive whole", async () => {
    const [size, same, count, last] = await run(`
      local r = mix.redis.connection("default")
      local big = string.rep("0123456789abcdef", 65536)
      r:command("set", "big", big)
      local got = r:command("get", "big")
      r:command("del", "many")
      for i = 1, 20000, 1000 do
        local chunk = {}
        for j = i, i + 999 do chunk[#chunk + 1] = "item" .. j end
        r:command("rpush", "many", unpack(chunk))
      end
      local all = r:command("lrange", "many", 0, -1)
      return #got, got == big, #all, all[#all]`);
    expect([size, same, count, last]).toEqual([1048576, true, 20000, "item20000"]);
  });

  test("numbers as arguments, and the configured database", async () => {
    const [f, inDb2, inDb0] = await run(`
      local r, r2 = mix.redis.connection("default"), mix.redis.connection("db2")
      r2:command("set", "only-in-2", 12345678901)
      return r:command("incrbyfloat", "float", 1.5), r2:command("get", "only-in-2"), r:command("get", "only-in-2")`);
    expect(f).toBe("1.5");
    expect(inDb2).toBe("12345678901");
    expect(inDb0).toBeNull();
  });
});

describe.skipIf(!REDIS)("the key helpers of older connmix docs", () => {
  test("mix.redis.set/get/incr/decr/llen work on the default connection; set's expire is in seconds", async () => {
    const r = await run(`
      local out = {}
      local function add(...) out[#out + 1] = { n = select("#", ...), ... } end
      local r = mix.redis.connection("default")
      r:command("del", "legacy:n", "legacy:list")
      add(mix.redis.set("legacy:k", "v1"))
      add(mix.redis.get("legacy:k"))
      add(mix.redis.get("legacy:missing"))
      add(mix.redis.incr("legacy:n", 5))
      add(mix.redis.incr("legacy:n"))
      add(mix.redis.decr("legacy:n", 2))
      add(mix.redis.decr("legacy:n"))
      r:command("rpush", "legacy:list", "a", "b", "c")
      add(mix.redis.llen("legacy:list"))
      add(mix.redis.set("legacy:ttl", "x", 30))
      add(r:command("ttl", "legacy:ttl"))
      add(r:command("ttl", "legacy:k"))
      add(mix.redis.set("legacy:k", "v2", -1))
      add(mix.redis.incr("legacy:k"))
      return out`);
    expect(r[0]).toEqual([
      { n: 1, 1: "OK" },
      { n: 1, 1: "v1" },
      { n: 1 },
      { n: 1, 1: 5 },
      { n: 1, 1: 6 },
      { n: 1, 1: 4 },
      { n: 1, 1: 3 },
      { n: 1, 1: 3 },
      { n: 1, 1: "OK" },
      { n: 1, 1: 30 },
      { n: 1, 1: -1 },
      { n: 2, 2: "redis set: expire must be a number of seconds (0 for none), got -1" },
      { n: 2, 2: "ERR value is not an integer or out of range" },
    ]);
  });
});

describe.skipIf(!REDIS)("errors", () => {
  test("passwords: right, wrong, missing", async () => {
    const r = await run(`
      local function try(name) return { mix.redis.connection(name):command("ping") } end
      return try("secured"), try("wrongpass"), try("nopass")`);
    expect(r).toEqual([
      ["PONG"],
      [null, "WRONGPASS invalid username-password pair or user is disabled."],
      [null, "NOAUTH Authentication required."],
    ]);
  });

  test("bad names, arguments and commands are refused with a reason", async () => {
    const r = await run(`
      local r = mix.redis.connection("default")
      local out = {}
      local function add(a, b) out[#out + 1] = b or a end
      add(mix.redis.connection("nope"))
      add(mix.redis.connection(42))
      add(r:command("set", "k", {}))
      add(r:command("set", "k", nil))
      add(r:command(""))
      add(r.command("get", "k"))
      add(r:command("subscribe", "ch"))
      add(r:command("multi"))
      add(mix.redis.connection("down"):command("ping"))
      add(r:command("ping"))
      return out`);
    expect(r[0]).toEqual([
      "no redis connection named 'nope' in engine.luavm.redis",
      "redis connection name must be a string, got number",
      "redis argument 2 must be a string or a number, got table",
      "redis argument 2 must be a string or a number, got nil",
      "redis command must be a non-empty string",
      "call it as redis:command(...)",
      "redis: subscribe is not supported (each command may run on a different pooled connection; use EVAL for atomic sequences and the db setting to choose a database)",
      "redis: multi is not supported (each command may run on a different pooled connection; use EVAL for atomic sequences and the db setting to choose a database)",
      `redis: connection refused (127.0.0.1:${nobody})`,
      "PONG",
    ]);
  });

  test("outside a callback (while the entry loads) a command is refused with a reason", async () => {
    const early = await startServer({
      redis: [pool("default", plain.port)],
      entry: `local _, err = mix.redis.connection():command("ping")\nfunction on_message(msg, conn) conn:send(err) end`,
    });
    const c = await Client.open(early.url);
    expect(await c.ask("why")).toBe("redis:command can only wait inside a callback");
    c.close();
    await early.stop();
  });

  test("redis going down fails commands with a reason; when it is back, commands work again", async () => {
    expect(await run(`return mix.redis.connection("default"):command("set", "k", "v")`)).toEqual(["OK"]);
    await plain.kill();
    const [down1, down2] = await run(`
      local r = mix.redis.connection("default")
      local _, e1 = r:command("get", "k")
      local _, e2 = r:command("get", "k")
      return e1, e2`);
    // A pooled connection may notice the close only when used; either way the script gets a reason.
    expect(down1).toMatch(/^redis: (connection refused \(127\.0\.0\.1:\d+\)|connection closed by the server)$/);
    expect(down2).toBe(`redis: connection refused (127.0.0.1:${plain.port})`);
    await plain.start();
    expect(await run(`
      local r = mix.redis.connection("default")
      return r:command("get", "k"), r:command("set", "k", "again"), r:command("get", "k")`)).toEqual([null, "OK", "again"]);
  });
});

describe.skipIf(!REDIS)("hung server", () => {
  test("a command to a server that stopped answering times out after readTimeout (1 s here); then the pool recovers", async () => {
    expect(await run(`return mix.redis.connection("quick"):command("ping")`)).toEqual(["PONG"]);
    plain.signal("SIGSTOP");
    const t0 = Date.now();
    let r: unknown[];
    try {
      r = await run(`return mix.redis.connection("quick"):command("get", "k")`);
    } finally {
      plain.signal("SIGCONT");
    }
    const elapsed = Date.now() - t0;
    expect(r).toEqual([null, "redis: timeout after 1s"]);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(2900); // not the default 3 s
    expect(await run(`return mix.redis.connection("quick"):command("ping")`)).toEqual(["PONG"]);
  }, 10_000);
});

describe.skipIf(!REDIS)("waiting and pooling", () => {
  test("a connection blocked in BLPOP does not hold up others; BLPOP's own timeout is honoured", async () => {
    const waiter = await Client.open(server.url);
    const t0 = Date.now();
    const popped = evalLua(waiter, `return mix.redis.connection("default"):command("blpop", "jobs", 5)`);
    await Bun.sleep(100);
    expect(await run(`return mix.redis.connection("default"):command("ping")`)).toEqual(["PONG"]);
    expect(await run(`return mix.redis.connection("default"):command("rpush", "jobs", "job-1")`)).toEqual([1]);
    expect(await popped).toEqual([["jobs", "job-1"]]);
    expect(Date.now() - t0).toBeLessThan(2000);
    const t1 = Date.now();
    expect(await evalLua(waiter, `return mix.redis.connection("default"):command("blpop", "jobs", 1)`)).toEqual([null]);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(900);
    waiter.close();
  });

  test("poolSize caps the connections: a third command waits for one of two busy ones", async () => {
    const a = await Client.open(server.url);
    const b = await Client.open(server.url);
    const t0 = Date.now();
    const pa = evalLua(a, `return mix.redis.connection("two"):command("blpop", "never", 0.5)`);
    const pb = evalLua(b, `return mix.redis.connection("two"):command("blpop", "never", 0.5)`);
    await Bun.sleep(50);
    expect(await run(`return mix.redis.connection("two"):command("ping")`)).toEqual(["PONG"]);
    const waited = Date.now() - t0;
    expect(await pa).toEqual([null]);
    expect(await pb).toEqual([null]);
    expect(waited).toBeGreaterThanOrEqual(450);
    a.close();
    b.close();
  });

  test("minIdleConns keeps idle connections open after first use; idleTimeout closes them", async () => {
    const clients = () => run(`
      local info = mix.redis.connection("secured"):command("info", "clients")
      return tonumber(info:match("connected_clients:(%d+)"))`).then((r) => r[0] as number);
    const before = await clients(); // the "secured" pool's own connection
    expect(await run(`return mix.redis.connection("warm"):command("ping")`)).toEqual(["PONG"]);
    await Bun.sleep(200);
    expect(await clients()).toBe(before + 3);
    // Idle for more than idleTimeout (1 s): the reaper (every second here) closes them.
    const t0 = Date.now();
    while ((await clients()) !== before && Date.now() - t0 < 5000) await Bun.sleep(100);
    expect(await clients()).toBe(before);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500); // not before they were idle for idleTimeout
  });
});
