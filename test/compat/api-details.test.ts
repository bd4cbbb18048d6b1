// Details of the documented API that connmix users rely on: /ws/v1 answers a text `ping` with `pong` and
// echoes a request's "id", mix.redis.push LPUSHes items shaped like an event's p, which a BRPOP backend reads (and
// answers through the API with the id it carries), buf:read returns s, err, and mix.log returns b.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { defaultRedis } from "../../src/config/index.ts";
import { startTestEngine, type TestEngine } from "../api/helpers.ts";
import { TcpClient } from "../engine/helpers.ts";
import { cleanupAll } from "../helpers/files.ts";
import { post } from "../helpers/http.ts";
import { freePort } from "../helpers/ports.ts";
import { REDIS, RedisProcess } from "../helpers/redis.ts";
import { Client } from "../helpers/ws.ts";
import { startEntry } from "./lua-root.ts";

const redis = new RedisProcess(freePort());
let e: TestEngine;

// 1.0.1 callbacks on a websocket server; every message goes to the Redis list "chat".
const ENTRY = `
function on_handshake(headers, conn) end
function on_message(data, conn)
  local written = mix.log(mix.DEBUG, "message " .. data.data)
  local n, err = mix.redis.push("chat", { event = "message", frame = data, logged = written })
  if err then conn:send("push failed: " .. err) end
end
function on_close(err, conn) end`;

beforeAll(async () => {
  if (!REDIS) throw new Error("redis-server is not installed (bin/setup --test installs it)");
  await redis.start();
  e = await startTestEngine(ENTRY, {
    edit: (c) => void (c.engine.luavm.redis = [{ ...defaultRedis(), addr: `127.0.0.1:${redis.port}`, minIdleConns: 0 }]),
  });
}, 20_000);

afterAll(async () => {
  await e?.stop();
  await redis.kill();
  await cleanupAll();
});

describe("/ws/v1", () => {
  test("a text ping is answered pong; a request's \"id\" comes back as i and id", async () => {
    const api = await Client.open(e.apiWs);
    expect(await api.ask("ping")).toBe("pong");
    const user = await Client.open(e.chatUrl);
    const ids = [...e.engine.node.connections.keys()];
    const id = ids[ids.length - 1]!;
    api.send({ m: "mesh.send", p: { c: String(id), d: "hello, world!" }, id: 12345 });
    expect(JSON.parse(String(await api.next()))).toEqual({ E: null, r: { s: true }, i: 12345, id: 12345 });
    expect(await user.next()).toBe("hello, world!");
    api.send({ m: "mesh.send", p: { c: "1", d: "x" }, i: 7 });
    expect(JSON.parse(String(await api.next()))).toEqual({ E: { c: 101, m: 'c must be a client id (a number or a decimal string), got "1"' }, i: 7 });
  });
});

describe("mix.redis.push", () => {
  test("LPUSHes {n, c, t, d} items in push order; the backend BRPOPs them and answers with their client id", async () => {
    const backend = new RedisClient(`redis://127.0.0.1:${redis.port}`);
    try {
      const user = await Client.open(e.chatUrl);
      user.send("first");
      user.send("second");
      const items: any[] = [];
      for (let k = 0; k < 2; k++) {
        const popped = (await backend.send("BRPOP", ["chat", "5"])) as [string, string];
        items.push(JSON.parse(popped[1]));
      }
      expect(items.map((i) => i.d.frame.data)).toEqual(["first", "second"]);
      // The PHP client's Client::parse() reads an item as the p of an event: {"p": item}. Its nodeID() is
      // an int, clientID() takes the decimal string, data() must be an array.
      const item = items[0];
      expect(Object.keys(item)).toEqual(["n", "c", "t", "d"]);
      expect(item.t).toBe("chat");
      expect(item.n).toBe(e.engine.node.index);
      expect(item.c).toMatch(/^\d+$/);
      expect(item.d).toEqual({ event: "message", frame: { type: "text", data: "first", finish: true }, logged: true });
      expect(await post(`${e.apiUrl}/v1/mesh/send`, { c: item.c, d: "reply" })).toEqual({ E: null, r: { s: true } });
      expect(await user.next()).toBe("reply");
    } finally {
      backend.close();
    }
  });
});

describe("buf:read", () => {
  test("returns s, err: nil and a reason when fewer bytes remain", async () => {
    const s = await startEntry(`
function protocol_input(buf, conn)
  local s, err = buf:read(4)
  if not s then conn:send("wait: " .. tostring(err) .. "\\n") return 0 end
  return buf:position()
end
function on_message(data, conn) conn:send("got " .. data .. "\\n") end`, { protocol: "socket" });
    const c = await TcpClient.connect(s.port);
    c.write("ab");
    expect(await c.lines(1)).toEqual(["wait: not enough bytes"]);
    c.write("cd");
    expect((await c.lines(2))[1]).toBe("got abcd");
  });
});

describe("init() and mix.queue.new (1.0.1 scripts create their queues there)", () => {
  test("init runs once the entry is loaded; mix.queue.new checks its arguments; an error in init fails the start", async () => {
    const s = await startEntry(`
function init()
  mix.queue.new("chat", 100)
  started = (mix.queue.new("", 1) or "") .. "|" .. (mix.queue.new("x", "big") or "")
end
function protocol_input(buf, conn) return buf:length() end
function on_message(data, conn) conn:send(started .. "\\n") end`, { protocol: "socket" });
    const c = await TcpClient.connect(s.port);
    c.write("x");
    expect(await c.lines(1)).toEqual(["invalid topic|invalid size: big"]);
    await expect(startEntry(`function init() error("no database") end`)).rejects.toThrow(/no database/);
  });
});
