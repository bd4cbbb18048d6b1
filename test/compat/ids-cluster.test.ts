// Client ids across a real cluster: a center and two engines with `-p 2` (four worker processes), 1000
// WebSocket clients. Every id prints the same digits in Lua through tostring, "..", string.format("%d") and
// as a table key, is unique, and round-trips through every path that takes it back: mix.mesh.send from Lua
// (to every node and worker), the HTTP and /ws/v1 APIs (as a string and as a number), conn.call releasing
// wait_context_value, and queue events.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { nodeOf, workerOf } from "../../src/net/client-ids.ts";
import { ClusterDir, Node, type EnginePorts } from "../cluster/helpers.ts";
import { cleanupAll } from "../helpers/files.ts";
import { Client } from "../helpers/ws.ts";

const CLIENTS = 1000;

// Our own script, 1.0.1 callbacks. `id` answers the id four ways; `send <id> <text>` uses mix.mesh.send
// with the id as the text the client got; `push` queues the id; `wait` blocks on wait_context_value.
const ENTRY = `
local seen = {}
function on_handshake(headers, conn) end
function on_message(msg, conn)
  local cmd, arg, rest = msg.data:match("^(%S+) ?(%S*) ?(.*)$")
  local id = conn:client_id()
  if cmd == "id" then
    seen[id] = true
    local key
    for k in pairs(seen) do if k == id then key = k end end
    conn:send(table.concat({ "id", tostring(id), "" .. id, string.format("%d", id), tostring(key) }, " "))
  elseif cmd == "send" then
    local err = mix.mesh.send(arg, rest)
    if err then conn:send("send failed " .. err) end
  elseif cmd == "push" then
    local n, err = mix.queue.push("ids", { id = id, text = tostring(id) })
    conn:send("pushed " .. tostring(err))
  elseif cmd == "wait" then
    conn:send("got " .. tostring(conn:wait_context_value("uid")))
  end
end
function on_close(err, conn) seen[conn:client_id()] = nil end
`;

const d = new ClusterDir();
writeFileSync(join(d.dir, "lua/entry.lua"), ENTRY);
let ports: EnginePorts[] = [];
const clients: { c: Client; id: number; text: string; engine: number }[] = [];

beforeAll(async () => {
  const center = new Node("center", d.center(), d.dir);
  await center.waitFor(/start the registry server/, 15_000);
  const engines = [d.engine("a"), d.engine("b")];
  ports = engines.map(([, p]) => p);
  const nodes = engines.map(([conf], i) => new Node("engine", conf, d.dir, "2"));
  for (const n of nodes) await n.waitFor(/start the lua server/, 30_000);
  for (const n of nodes) await n.waitFor(/mesh link to node_id \S+ .* up/, 15_000);
}, 60_000);

afterAll(cleanupAll);

describe("client ids in a cluster of two engines with -p 2", () => {
  test("1000 clients: each id prints the same digits four ways in Lua and is unique; nodes and workers all appear", async () => {
    for (let i = 0; i < CLIENTS; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, async (_, k) => {
        const engine = (i + k) % 2;
        const c = await Client.open(`ws://127.0.0.1:${ports[engine]!.lua}/chat`);
        const parts = (await c.ask("id", 15_000)).split(" ");
        return { c, parts, engine };
      }));
      for (const { c, parts, engine } of batch) {
        const [, a, b, f, key] = parts;
        expect([b, f, key]).toEqual([a, a, a]);
        expect(a).toMatch(/^\d{1,14}$/);
        clients.push({ c, id: Number(a), text: a!, engine });
      }
    }
    expect(new Set(clients.map((x) => x.text)).size).toBe(CLIENTS);
    for (const engine of [0, 1]) {
      const mine = clients.filter((x) => x.engine === engine);
      expect(new Set(mine.map((x) => nodeOf(x.id))).size).toBe(1);
      expect(new Set(mine.map((x) => workerOf(x.id)))).toEqual(new Set([0, 1]));
    }
    expect(nodeOf(clients[0]!.id)).not.toBe(nodeOf(clients[1]!.id));
  }, 120_000);

  test("mix.mesh.send with the printed id reaches every client, across nodes and workers", async () => {
    // Client i sends to client i+1 (the other engine; either worker), 100 at a time: on a loaded machine a
    // burst of 1000 cross-node sends can outlast the mesh's 3 s answer timeout.
    for (let first = 0; first < CLIENTS; first += 100) {
      for (let i = first; i < first + 100; i++) clients[i]!.c.send(`send ${clients[(i + 1) % CLIENTS]!.text} from-${i}`);
      for (let i = first; i < first + 100; i++) {
        const to = (i + 1) % CLIENTS;
        expect(await clients[to]!.c.next(20_000)).toBe(`from-${i}`);
      }
    }
  }, 120_000);

  test("the HTTP API takes ids as strings and numbers; /ws/v1 too; every engine reaches every client", async () => {
    const sample = clients.filter((_, i) => i % 10 === 0); // 100 clients, both engines, all workers
    for (const [k, x] of sample.entries()) {
      const api = ports[k % 2]!.api; // half of them through the other engine's API
      const c = k % 4 < 2 ? x.text : x.id;
      const r = await fetch(`http://127.0.0.1:${api}/v1/mesh/send`, { method: "POST", body: JSON.stringify({ c, d: `http-${k}` }) });
      expect(await r.json()).toEqual({ E: null, r: { s: true } });
    }
    for (const [k, x] of sample.entries()) expect(await x.c.next(10_000)).toBe(`http-${k}`);
    const ws = await Client.open(`ws://127.0.0.1:${ports[1]!.api}/ws/v1`);
    for (const [k, x] of sample.entries()) {
      const r = await ws.call("mesh.send", { c: k % 2 ? x.text : x.id, d: `ws-${k}` }, k);
      expect(r).toEqual({ E: null, r: { s: true }, i: k });
    }
    for (const [k, x] of sample.entries()) expect(await x.c.next(10_000)).toBe(`ws-${k}`);
    ws.close();
  }, 120_000);

  test("conn.call with the id releases wait_context_value on whichever node and worker holds the client", async () => {
    // Two clients of each node and worker.
    const where = (x: { id: number }) => `${nodeOf(x.id)}/${workerOf(x.id)}`;
    const taken = new Map<string, number>();
    const sample = clients.filter((x) => {
      const n = taken.get(where(x)) ?? 0;
      taken.set(where(x), n + 1);
      return n < 2;
    });
    expect(new Set(sample.map(where)).size).toBe(4);
    expect(sample).toHaveLength(8);
    for (const x of sample) x.c.send("wait");
    const api = await Client.open(`ws://127.0.0.1:${ports[0]!.api}/ws/v1`);
    for (const [k, x] of sample.entries()) {
      const r = await api.call("conn.call", { c: x.text, f: "set_context_value", a: ["uid", 1000 + k] }, k);
      expect(r).toEqual({ E: null, r: { s: true }, i: k });
    }
    for (const [k, x] of sample.entries()) expect(await x.c.next(10_000)).toBe(`got ${1000 + k}`);
    api.close();
  }, 60_000);

  test("queue events carry the id as a decimal string, the pushed number is the same id, n its node index", async () => {
    const consumers = await Promise.all(ports.map((p) => Client.open(`ws://127.0.0.1:${p.api}/ws/v1`)));
    for (const [k, c] of consumers.entries()) expect(await c.call("queue.pop", { t: ["ids"] }, k)).toEqual({ E: null, r: { s: true }, i: k });
    const sample = clients.filter((_, i) => i % 5 === 0); // 200
    for (const x of sample) x.c.send("push");
    for (const x of sample) expect(await x.c.next(10_000)).toBe("pushed nil");
    const events: any[] = [];
    await Promise.all(consumers.map(async (c) => {
      while (events.length < sample.length) {
        try {
          events.push(await c.json(2000));
        } catch {
          break; // the other consumer has the rest
        }
      }
    }));
    expect(events).toHaveLength(sample.length);
    for (const e of events) {
      expect(e.e).toBe("queue.pop");
      expect(e.p.c).toBe(e.p.d.text);
      expect(e.p.d.id).toBe(Number(e.p.c));
      expect(e.p.n).toBe(nodeOf(e.p.d.id)); // a JSON number: the index of the engine that queued it
    }
    expect(new Set(events.map((e) => e.p.c))).toEqual(new Set(sample.map((x) => x.text)));
    for (const c of consumers) c.close();
    for (const x of clients) x.c.close();
  }, 60_000);
});
