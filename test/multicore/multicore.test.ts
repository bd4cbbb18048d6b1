// `connmix dev -p 2`: one node with two worker processes, as clients, backends and the center see it.
// Clients are spread over both workers by the kernel (SO_REUSEPORT); every scenario pairs a client on
// worker 0 with one on worker 1 (told apart by workerOf of the ids they are given).
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { nodeOf, workerOf } from "../../src/net/client-ids";
import { cleanupAll, writeTree } from "../helpers/files";
import { freePorts, listeningPorts, waitForPortClosed } from "../helpers/ports";
import { Client } from "../helpers/ws";
import { Node } from "../cluster/helpers";
import { getJson } from "../helpers/http";
import { TcpClient } from "../engine/helpers";
import { MAX_MESSAGE_BYTES } from "../../src/engine/limits";

const ENTRY = (version: string) => `
function on_message(msg)
  local conn = mix.websocket()
  local cmd, arg, rest = msg.data:match("^(%S+) ?(%S*) ?(.*)$")
  if cmd == "id" then conn:send("id " .. string.format("%d", conn:client_id()))
  elseif cmd == "sub" then conn:subscribe(arg); conn:send("subscribed " .. arg)
  elseif cmd == "send" then conn:send("sent " .. tostring(mix.mesh.send(arg, rest)))
  elseif cmd == "pub" then local s, f = mix.mesh.publish(arg, rest); conn:send("published " .. s .. " " .. f)
  elseif cmd == "push" then local n, err = mix.queue.push(arg, { msg = rest }); conn:send("pushed " .. tostring(n) .. " " .. tostring(err))
  elseif cmd == "wait" then conn:send("value " .. tostring(conn:wait_context_value(arg)))
  elseif cmd == "log" then mix.log(mix.DEBUG, "debug " .. arg); mix.log(mix.INFO, "info " .. arg); conn:send("logged")
  elseif cmd == "version" then conn:send("${version}")
  end
end
`;

interface Opened {
  c: Client;
  id: number;
}

const multicore = availableParallelism() >= 2;

/** Each line a raw TCP client sends is answered with its client id. */
const SOCKET_ENTRY = `
function protocol_input(buf) local i = buf:tostring():find("\\n") return i or 0 end
function on_message(line) mix.socket.tcp():send(string.format("%d\\n", mix.socket.tcp():client_id())) end
`;

/**
 * A dev config on `ports` (registry, center API, mesh point, API, websocket Lua server, socket Lua server)
 * with a small queue topic.
 */
function devConfig([registry, centerApi, mesh, api, lua, tcp]: number[], level = "debug"): string {
  return (
    `logging: { filename: logs/dev.log, level: ${level} }\n` +
    `center:\n  registry: { port: ${registry}, bind: 127.0.0.1 }\n  apiServer: { port: ${centerApi}, bind: 127.0.0.1 }\n` +
    `engine:\n  centerRegistry: 127.0.0.1:${registry}\n  meshPoint: { port: ${mesh}, bind: 127.0.0.1 }\n` +
    `  apiServer: { port: ${api}, bind: 127.0.0.1 }\n  luavm: { queue: { topicSize: 3, maxTopics: 10 } }\n` +
    `  servers:\n    - { port: ${lua}, bind: 127.0.0.1, entry: lua/entry.lua, byteCodeExpires: 1, options: [{ name: path, value: /chat }] }\n` +
    `    - { port: ${tcp}, bind: 127.0.0.1, protocol: socket, entry: lua/socket.lua }\n`
  );
}

/** Reads until `done` holds or `ms` passed; returns the last reading. */
async function settle<T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  let v = await read();
  while (!done(v) && Date.now() < end) {
    await Bun.sleep(100);
    v = await read();
  }
  return v;
}

describe.skipIf(!multicore)("dev -p 2", () => {
  const ports = freePorts(6);
  const [registry, centerApi, mesh, api, lua, tcp] = ports;
  const config = (level: string) => devConfig(ports, level);
  const dir = writeTree({ "lua/entry.lua": ENTRY("v1"), "lua/socket.lua": SOCKET_ENTRY, "dev.yaml": config("debug") });
  const node = new Node("dev", join(dir, "dev.yaml"), dir, "2");
  const apiUrl = `http://127.0.0.1:${api}`;
  const post = (path: string, body: unknown) => fetch(apiUrl + path, { method: "POST", body: JSON.stringify(body) }).then((r) => r.json() as Promise<any>);
  const open: Opened[] = [];
  let w0: Opened, w1: Opened, other0: Opened;
  const workerPids: number[] = [];
  afterAll(cleanupAll);

  /** Opens `n` clients and learns their ids. */
  async function connect(n: number): Promise<Opened[]> {
    const list: Opened[] = [];
    for (let i = 0; i < n; i++) {
      const c = await Client.open(`ws://127.0.0.1:${lua}/chat`);
      list.push({ c, id: Number((await c.ask("id")).split(" ")[1]) });
    }
    open.push(...list);
    return list;
  }

  const metric = (text: string, name: string) => Number(text.match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1]);
  const scrape = () => fetch(`${apiUrl}/metrics`).then((r) => r.text());

  test("starts two workers and logs the start-up once, as one node", async () => {
    await node.waitFor(/start the lua server/, 15_000);
    for (const m of node.out.matchAll(/worker (\d) started \(pid (\d+)\)/g)) workerPids[Number(m[1])] = Number(m[2]);
    expect(workerPids.filter(Boolean)).toHaveLength(2);
    const id = (await node.waitFor(/register engine node_id (\S+)/))[1]!;
    expect(node.messages().filter((m) => /^(start the|center registry .* connect successful|register (engine|node))/.test(m))).toEqual([
      `start the center server 127.0.0.1:${centerApi}`,
      `start the registry server (127.0.0.1:${registry})`,
      `start the mesh point (127.0.0.1:${mesh})`,
      `start the api server (127.0.0.1:${api})`,
      `center registry 127.0.0.1:${registry} connect successful`,
      `register node 127.0.0.1 node_id ${id}`,
      `register engine node_id ${id}`,
      `start the lua server ${join(dir, "lua/entry.lua")} (127.0.0.1:${lua})`,
      `start the lua server ${join(dir, "lua/socket.lua")} (127.0.0.1:${tcp})`,
    ]);
    const { nodes } = await getJson(`http://127.0.0.1:${centerApi}/v1/nodes`);
    expect(nodes.map((n: { id: string }) => n.id)).toEqual([id]);
  }, 20_000);

  test("the kernel spreads clients over both workers; their ids say which", async () => {
    const list = await connect(24);
    const workers = list.map((o) => workerOf(o.id));
    expect(new Set(workers)).toEqual(new Set([0, 1]));
    w0 = list.find((o) => workerOf(o.id) === 0)!;
    w1 = list.find((o) => workerOf(o.id) === 1)!;
    expect(new Set(list.map((o) => Math.floor(o.id / 2 ** 36))).size).toBe(1); // one node index
    // The socket server's port (Bun.listen) is shared the same way.
    const tcpWorkers: number[] = [];
    for (let i = 0; i < 24; i++) {
      const c = await TcpClient.connect(tcp!);
      c.write("id\n");
      tcpWorkers.push(workerOf(Number((await c.lines(1))[0])));
      c.end();
    }
    expect(new Set(tcpWorkers)).toEqual(new Set([0, 1]));
  });

  test("Lua on one worker sends to a client on the other and publishes to subscribers on both", async () => {
    expect(await w1.c.ask(`send ${w0.id} from w1`)).toBe("sent nil");
    expect(await w0.c.next()).toBe("from w1");
    expect(await w0.c.ask(`send ${w1.id} from w0`)).toBe("sent nil");
    expect(await w1.c.next()).toBe("from w0");
    expect(await w0.c.ask(`send ${w1.id + 1000} nobody`)).toBe("sent client not found");
    other0 = open.find((o) => workerOf(o.id) === 0 && o !== w0)!;
    expect(await w0.c.ask("sub room")).toBe("subscribed room");
    expect(await w1.c.ask("sub room")).toBe("subscribed room");
    expect(await other0.c.ask("sub room")).toBe("subscribed room");
    // From worker 1: its own subscriber first, then the two on worker 0, counted together.
    expect([await w1.c.ask("pub room news"), await w1.c.next()]).toEqual(["news", "published 3 0"]);
    expect([await w0.c.next(), await other0.c.next()]).toEqual(["news", "news"]);
  });

  test("the API sends, publishes and runs conn.call on clients of both workers", async () => {
    for (const o of [w0, w1]) {
      expect(await post("/v1/mesh/send", { c: String(o.id), d: `api to ${workerOf(o.id)}` })).toEqual({ E: null, r: { s: true } });
      expect(await o.c.next()).toBe(`api to ${workerOf(o.id)}`);
    }
    expect(await post("/v1/mesh/publish", { c: "room", d: "api news" })).toEqual({ E: null, r: { s: 3, f: 0 } });
    expect([await w0.c.next(), await w1.c.next(), await other0.c.next()]).toEqual(["api news", "api news", "api news"]);
    expect((await post("/v1/mesh/send", { c: String(w1.id + 1000), d: "x" })).E).toEqual({ c: 401, m: "client not found" });

    const backend = await Client.open(`ws://127.0.0.1:${api}/ws/v1`);
    for (const o of [w0, w1]) {
      o.c.send("wait uid");
      await Bun.sleep(50); // the callback is waiting
      expect(await backend.call("conn.call", { c: String(o.id), f: "set_context_value", a: ["uid", `u${workerOf(o.id)}`] })).toMatchObject({ E: null });
      expect(await o.c.next()).toBe(`value u${workerOf(o.id)}`);
    }
    backend.close();
  });

  test("queue items pushed on either worker reach a consumer of the node's API; a full topic is an error in Lua", async () => {
    // No consumer yet: topicSize 3 holds three items, the fourth is refused.
    for (let i = 1; i <= 3; i++) expect(await (i % 2 ? w0 : w1).c.ask(`push held ${i}`)).toBe(`pushed ${i} nil`);
    expect(await w1.c.ask("push held 4")).toBe("pushed nil queue topic held is full (topicSize 3)");
    const backend = await Client.open(`ws://127.0.0.1:${api}/ws/v1`);
    expect(await backend.call("queue.pop", { t: ["held", "chat"] })).toMatchObject({ E: null });
    const held = [await backend.json(), await backend.json(), await backend.json()];
    expect(held.map((e) => [e.p.t, e.p.d.msg, e.p.c])).toEqual([
      ["held", "1", String(w0.id)],
      ["held", "2", String(w1.id)],
      ["held", "3", String(w0.id)],
    ]);
    expect(await w0.c.ask("push chat hello")).toBe("pushed 0 nil"); // handed over at once
    expect(await w1.c.ask("push chat world")).toBe("pushed 0 nil");
    const live = [await backend.json(), await backend.json()];
    expect(live.map((e) => [e.p.d.msg, e.p.c])).toEqual([
      ["hello", String(w0.id)],
      ["world", String(w1.id)],
    ]);
    // `n`: the node index the center assigned (a number, shared by both workers' client ids).
    const { index } = (await getJson(`http://127.0.0.1:${centerApi}/v1/nodes`)).nodes[0];
    expect(new Set([...held, ...live].map((e) => e.p.n))).toEqual(new Set([index]));
    expect(nodeOf(w0.id)).toBe(index);
    backend.close();
  });

  test("/metrics and the center count the clients and messages of both workers", async () => {
    const read = 'connmix_engine_servers_read_messages_total{protocol="websocket"}';
    // Workers report every second: after a quiet second and a half the baseline is complete.
    await Bun.sleep(1500);
    const start = metric(await scrape(), read);
    for (const o of open) o.c.send("version");
    for (const o of open) expect(await o.c.next()).toBe("v1");
    const text = await settle(scrape, (t) => metric(t, read) === start + open.length);
    expect(metric(text, read)).toBe(start + open.length);
    expect(metric(text, "connmix_engine_servers_clients")).toBe(open.length);
    // Memory: the primary's and both workers' resident sets.
    const rss = (pid: number) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/)![1]) * 1024;
    const expected = rss(node.pid) + rss(workerPids[0]!) + rss(workerPids[1]!);
    expect(Math.abs(metric(text, "process_resident_memory_bytes") - expected) / expected).toBeLessThan(0.3);
    const clients = () => getJson(`http://127.0.0.1:${centerApi}/v1/nodes`).then((r) => r.nodes[0].clients as number);
    expect(await settle(clients, (n) => n === open.length)).toBe(open.length);
  });

  test("/metrics counts what either worker dropped, and the mesh and registry ports count outsiders they refused", async () => {
    // A message over 1 MiB from a client on each worker (not one the other tests use): both closed with 1009.
    const tooLarge = 'connmix_engine_servers_dropped_messages_total{protocol="websocket",reason="too_large"}';
    const start = metric(await scrape(), tooLarge);
    const spare = [0, 1].map((k) => open.find((o) => workerOf(o.id) === k && ![w0, w1, other0].includes(o))!);
    for (const o of spare) o.c.send("x".repeat(MAX_MESSAGE_BYTES + 1));
    for (const o of spare) expect((await o.c.waitClosed()).code).toBe(1009);
    open.splice(0, open.length, ...open.filter((o) => !spare.includes(o)));
    expect(metric(await settle(scrape, (t) => metric(t, tooLarge) === start + 2), tooLarge)).toBe(start + 2);
    // A peer that answers the challenge with anything but the secret's proof, on the mesh point and the registry.
    for (const port of [mesh!, registry!]) {
      const c = await TcpClient.connect(port);
      c.write(new Uint8Array([0, 0, 0, 4, 1, 2, 3, 4]));
      await c.waitClosed();
    }
    // The same at both workers' own link ports (which only their primary dials): counted in the worker, summed.
    const linkPorts = workerPids.map((pid) => listeningPorts(pid).find((p) => p !== lua && p !== tcp)!);
    expect(linkPorts.every(Boolean)).toBe(true);
    for (const port of linkPorts) {
      const c = await TcpClient.connect(port);
      c.write(new Uint8Array([0, 0, 0, 4, 1, 2, 3, 4]));
      await c.waitClosed();
    }
    const refused = (kind: string, listener: string) => `connmix_${kind}_refused_connections_total{listener="${listener}",reason="auth_failed"}`;
    expect(metric(await scrape(), refused("engine", "mesh"))).toBe(1);
    expect(metric(await settle(scrape, (t) => metric(t, refused("engine", "worker")) === 2), refused("engine", "worker"))).toBe(2);
    const center = await fetch(`http://127.0.0.1:${centerApi}/metrics`).then((r) => r.text());
    expect(metric(center, refused("center", "registry"))).toBe(1);
    expect(center).not.toContain('listener="mesh"'); // one process, but each API shows its own ports
  });

  test("an edited entry reaches the Lua VMs of both workers", async () => {
    writeFileSync(join(dir, "lua/entry.lua"), ENTRY("v2"));
    for (const o of [w0, w1]) {
      const end = Date.now() + 5000;
      let answer = "";
      while ((answer = await o.c.ask("version")) !== "v2" && Date.now() < end) await Bun.sleep(200);
      expect(answer).toBe("v2");
    }
  });

  test("a hot logging.level change reaches both workers", async () => {
    const mark = node.mark();
    expect([await w0.c.ask("log before0"), await w1.c.ask("log before1")]).toEqual(["logged", "logged"]);
    await node.waitFor(/debug before0/, 3000, mark);
    await node.waitFor(/debug before1/, 3000, mark);
    writeFileSync(join(dir, "dev.yaml"), config("info"));
    await node.waitFor(/config .*dev\.yaml reloaded/, 5000, mark);
    await Bun.sleep(300); // the workers got the change over IPC
    const after = node.mark();
    expect([await w0.c.ask("log after0"), await w1.c.ask("log after1")]).toEqual(["logged", "logged"]);
    await node.waitFor(/info after0/, 3000, after);
    await node.waitFor(/info after1/, 3000, after);
    expect(node.out.slice(after)).not.toContain("debug after");
  });

  test("a worker killed with SIGKILL is logged and restarted; the other worker's clients keep working", async () => {
    const mark = node.mark();
    process.kill(workerPids[1]!, "SIGKILL");
    await node.waitFor(new RegExp(`ERROR\\t\\S+\\tworker 1 \\(pid ${workerPids[1]}\\) exited with signal SIGKILL: its clients are disconnected`), 5000, mark);
    const lost = open.filter((o) => workerOf(o.id) === 1);
    for (const o of lost) expect((await o.c.waitClosed()).code).toBe(1006);
    for (const o of open.filter((o) => workerOf(o.id) === 0)) expect(await o.c.ask("version")).toBe("v2");
    const pid = Number((await node.waitFor(/worker 1 restarted \(pid (\d+)\)/, 5000, mark))[1]);
    expect(pid).not.toBe(workerPids[1]);
    workerPids[1] = pid;
    // New clients land on the new worker 1, with ids its predecessor never handed out.
    let fresh: Opened | undefined;
    for (let i = 0; i < 40 && !fresh; i++) fresh = (await connect(1)).find((o) => workerOf(o.id) === 1);
    expect(fresh).toBeDefined();
    expect(fresh!.id % 2 ** 31).toBeGreaterThan(1_000_000);
    expect(await w0.c.ask(`send ${fresh!.id} welcome back`)).toBe("sent nil");
    expect(await fresh!.c.next()).toBe("welcome back");
    open.splice(0, open.length, ...open.filter((o) => !lost.includes(o)));
    // What the killed worker had counted (its too-large message) stays in the node's counters.
    const tooLarge = 'connmix_engine_servers_dropped_messages_total{protocol="websocket",reason="too_large"}';
    expect(metric(await scrape(), tooLarge)).toBe(2);
  }, 20_000);

  test("SIGTERM closes every client with 1001, stops the workers and exits 0", async () => {
    expect(new Set(open.map((o) => workerOf(o.id)))).toEqual(new Set([0, 1]));
    expect(await node.stop("SIGTERM")).toBe(0);
    for (const o of open) expect((await o.c.waitClosed()).code).toBe(1001);
    for (const pid of workerPids) expect(() => process.kill(pid, 0)).toThrow();
  }, 15_000);
});

describe.skipIf(!multicore)("dev -p 2, ended abruptly", () => {
  afterAll(cleanupAll);

  test("a worker that cannot start fails the engine's start with its reason", async () => {
    const dir = writeTree({ "lua/entry.lua": "function on_message(msg\n", "lua/socket.lua": SOCKET_ENTRY, "dev.yaml": devConfig(freePorts(6), "info") });
    const node = new Node("dev", join(dir, "dev.yaml"), dir, "2");
    await node.waitFor(/stopped/, 15_000);
    expect(await node.stop()).toBe(1);
    const errors = node.messages().filter((m) => /entry\.lua/.test(m));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/entry\.lua:2: .*expected/);
    expect(node.out).not.toContain("start the lua server");
  }, 20_000);

  test("a worker that cannot restart is retried with a growing delay until it can", async () => {
    const dir = writeTree({ "lua/entry.lua": ENTRY("v1"), "lua/socket.lua": SOCKET_ENTRY, "dev.yaml": devConfig(freePorts(6)) });
    const node = new Node("dev", join(dir, "dev.yaml"), dir, "2");
    const pid = Number((await node.waitFor(/worker 1 started \(pid (\d+)\)/, 15_000))[1]);
    await node.waitFor(/start the lua server/, 15_000);
    writeFileSync(join(dir, "lua/entry.lua"), "function on_message(msg\n");
    process.kill(pid, "SIGKILL");
    await node.waitFor(new RegExp(`worker 1 \\(pid ${pid}\\) exited with signal SIGKILL: its clients are disconnected, restarting it now`), 5000);
    await node.waitFor(/worker 1 \(pid \d+\) could not start \(\S+entry\.lua:2: .*expected.*\), restarting it in 0.5s/, 5000);
    writeFileSync(join(dir, "lua/entry.lua"), ENTRY("v1"));
    await node.waitFor(/worker 1 restarted \(pid \d+\)/, 8000);
    expect(await node.stop()).toBe(0);
  }, 25_000);

  test("workers whose primary was killed close their clients with 1001 and exit", async () => {
    const ports = freePorts(6);
    const dir = writeTree({ "lua/entry.lua": ENTRY("v1"), "lua/socket.lua": SOCKET_ENTRY, "dev.yaml": devConfig(ports) });
    const node = new Node("dev", join(dir, "dev.yaml"), dir, "2");
    await node.waitFor(/start the lua server/, 15_000);
    const clients: Client[] = [];
    for (let i = 0; i < 8; i++) clients.push(await Client.open(`ws://127.0.0.1:${ports[4]}/chat`));
    await node.stop("SIGKILL");
    for (const c of clients) expect((await c.waitClosed(3000)).code).toBe(1001);
    // The workers exit right after closing their clients; the port is free once the last one is gone.
    await waitForPortClosed(ports[4]!);
  }, 20_000);
});
