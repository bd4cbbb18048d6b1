// One center and two engines as separate processes: start-up in any order, cross-node send, publish and
// conn.call (from Lua and through the API), the center's view, a node killed with SIGKILL, a center restart.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { getJson, post, postJson } from "../helpers/http.ts";
import { Client } from "../helpers/ws.ts";
import { ClusterDir, Node, SHORT, type EnginePorts } from "./helpers";
import { rawClient, type RawClient } from "./links.ts";

const ID = "[0-9a-v]{20}";

describe("a center and two engines", () => {
  const d = new ClusterDir();
  const url = (p: EnginePorts) => `ws://127.0.0.1:${p.lua}/chat`;
  const center = { node: null as Node | null };
  let a: Node, b: Node, pa: EnginePorts, pb: EnginePorts;
  let idA = "", idB = "";
  afterAll(async () => {
    await Promise.all([center.node, a, b].map((n) => n?.stop("SIGKILL")));
    d.remove();
  });

  const apiPost = (p: EnginePorts, path: string, body: unknown) => post(`http://127.0.0.1:${p.api}${path}`, body);

  test("an engine started before the center retries, joins when it comes up, and logs its start-up in order", async () => {
    let conf: string;
    [conf, pa] = d.engine("a");
    a = new Node("engine", conf, d.dir);
    // Two failed attempts, each logged; the engine keeps running. A fresh process on a loaded machine may take
    // seconds to print anything at all.
    await a.waitFor(/connect failed \(ECONNREFUSED\), retry in [\d.]+s\n[^]*connect failed \(ECONNREFUSED\), retry in/, 15_000);
    center.node = new Node("center", d.center(), d.dir);
    await center.node.waitFor(/start the registry server/);
    // Engines start their workers (-p) after registering: seconds on a loaded machine.
    await a.waitFor(/start the lua server/, 15_000);
    [conf, pb] = d.engine("b");
    b = new Node("engine", conf, d.dir);
    await b.waitFor(/start the lua server/, 15_000);

    const startup = (n: Node) =>
      n.messages().filter((m) => /^(start the|center registry .* connect successful|register engine)/.test(m));
    idA = (await a.waitFor(new RegExp(`register engine node_id (${ID})`)))[1]!;
    idB = (await b.waitFor(new RegExp(`register engine node_id (${ID})`)))[1]!;
    expect(idA).not.toBe(idB);
    const entry = join(d.dir, "lua/entry.lua");
    expect(startup(a)).toEqual([
      `start the mesh point (127.0.0.1:${pa.mesh})`,
      `start the api server (127.0.0.1:${pa.api})`,
      `center registry 127.0.0.1:${d.registry} connect successful`,
      `register engine node_id ${idA}`,
      `start the lua server ${entry} (127.0.0.1:${pa.lua})`,
      `start the lua server ${entry} (127.0.0.1:${pa.lua2})`,
    ]);
    await center.node.waitFor(new RegExp(`register node 127.0.0.1 node_id ${idB}`)); // logs are flushed every 100 ms
    expect(center.node.messages().filter((m) => /^(start the|register node)/.test(m))).toEqual([
      `start the center server 127.0.0.1:${d.centerApi}`,
      `start the registry server (127.0.0.1:${d.registry})`,
      `register node 127.0.0.1 node_id ${idA}`,
      `register node 127.0.0.1 node_id ${idB}`,
    ]);
    // Both ends of the mesh are up before the tests below use it.
    await a.waitFor(new RegExp(`mesh link to node_id ${idB} .* up`));
    await b.waitFor(new RegExp(`mesh link to node_id ${idA} .* up`));
  }, 40_000);

  test("the center API lists both engines", async () => {
    const base = `http://127.0.0.1:${d.centerApi}`;
    expect(await getJson(`${base}/version`)).toEqual({ apis: ["v1"] });
    const { nodes } = await getJson(`${base}/v1/nodes`);
    const byId = Object.fromEntries(nodes.map((n: { id: string }) => [n.id, n]));
    expect(Object.keys(byId).sort()).toEqual([idA, idB].sort());
    expect(byId[idA]).toMatchObject({ api_server: `127.0.0.1:${pa.api}`, mesh_point: `127.0.0.1:${pa.mesh}` });
    expect(byId[idB]).toMatchObject({ api_server: `127.0.0.1:${pb.api}`, mesh_point: `127.0.0.1:${pb.mesh}` });
    expect(byId[idA].index).not.toBe(byId[idB].index);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain("\nconnmix_center_registry_engine_nodes 2\n");
  });

  test("Lua on B sends to a client on A and publishes to A's subscribers; errors are reported", async () => {
    const onA = await Client.open(url(pa));
    const onB = await Client.open(url(pb));
    const id = (await onA.ask("id")).split(" ")[1]!;
    expect(await onA.ask("sub room")).toBe("subscribed room");
    expect(await onB.ask(`send ${id} hello from B`)).toBe("sent nil");
    expect(await onA.next()).toBe("hello from B");
    expect(await onB.ask("pub room news")).toBe("published 1 0");
    expect(await onA.next()).toBe("news");
    // An id on A's node that does not exist, and one on no node at all.
    expect(await onB.ask(`send ${Number(id) + 1000} x`)).toBe("sent client not found");
    expect(await onB.ask(`send ${2 ** 36 * 1023 + 1} x`)).toBe("sent client not found");
    // Subscribers on B, and on both of A's servers (each with its own Lua VM): all counted.
    const onA2 = await Client.open(`ws://127.0.0.1:${pa.lua2}/other`);
    expect(await onA2.ask("sub room")).toBe("subscribed room");
    expect(await onB.ask("sub room")).toBe("subscribed room");
    // B's own subscriber gets the message before B's script gets the counts.
    expect([await onB.ask("pub room all"), await onB.next()]).toEqual(["all", "published 3 0"]);
    expect([await onA.next(), await onA2.next()]).toEqual(["all", "all"]);
    onA.close();
    onA2.close();
    onB.close();
  });

  test("the API on B sends and publishes to a client on A (text and binary)", async () => {
    const onA = await Client.open(url(pa));
    const id = (await onA.ask("id")).split(" ")[1]!;
    await onA.ask("sub api-room");
    expect(await apiPost(pb, "/v1/mesh/send", { c: id, d: "via api" })).toEqual({ E: null, r: { s: true } });
    expect(await onA.next()).toBe("via api");
    expect(await apiPost(pb, "/v1/mesh/publish", { c: "api-room", d: "to all" })).toEqual({ E: null, r: { s: 1, f: 0 } });
    expect(await onA.next()).toBe("to all");
    expect(await apiPost(pb, "/v1/mesh/send", { c: id, d: Buffer.from([0, 1, 255]).toString("base64"), t: "binary" })).toEqual({ E: null, r: { s: true } });
    expect(await onA.next()).toEqual(Buffer.from([0, 1, 255]));
    const missing = await apiPost(pb, "/v1/mesh/send", { c: String(Number(id) + 1000), d: "x" });
    expect(missing.E).toEqual({ c: 401, m: "client not found" });
    onA.close();
  }, 10_000);

  test("a publish whose channel name does not fit a mesh frame (over 65535 bytes) is refused and reaches no other channel on A", async () => {
    const onA = await Client.open(url(pa));
    await onA.ask("sub ab");
    const long = "ab" + "x".repeat(65536);
    // Refused where it enters (a truncated u16 length would have misframed it into "ab" on A).
    expect(await postJson(`http://127.0.0.1:${pb.api}/v1/mesh/publish`, { c: long, d: "payload" })).toEqual({
      status: 400,
      body: { E: { c: 101, m: "c is 65538 bytes: a channel name is at most 65535" } },
    });
    expect(await apiPost(pb, "/v1/mesh/publish", { c: "ab", d: "after" })).toEqual({ E: null, r: { s: 1, f: 0 } });
    expect(await onA.next()).toBe("after");
    onA.close();
  });

  test("conn.call through B's /ws/v1 sets a context value on A and releases wait_context_value", async () => {
    const onA = await Client.open(url(pa));
    const id = (await onA.ask("id")).split(" ")[1]!;
    expect(await onA.ask("wait uid")).toBe("waiting uid");
    const api = await Client.open(`ws://127.0.0.1:${pb.api}/ws/v1`);
    expect(await api.call("conn.call", { c: id, f: "set_context_value", a: ["uid", "1001"] }, 7)).toMatchObject({ E: null, i: 7 });
    expect(await onA.next()).toBe("value 1001");
    api.close();
    onA.close();
  });

  test("after a center restart both engines register again with their indexes and delivery works", async () => {
    const onA = await Client.open(url(pa));
    const id = (await onA.ask("id")).split(" ")[1]!;
    const before = (await getJson(`http://127.0.0.1:${d.centerApi}/v1/nodes`)).nodes;
    const [ma, mb] = [a.mark(), b.mark()];
    await center.node!.stop("SIGKILL");
    await a.waitFor(/center registry .* connection lost/, 3000, ma);
    center.node = new Node("center", d.center(), d.dir);
    await a.waitFor(new RegExp(`register engine node_id ${idA}`), 8000, ma);
    await b.waitFor(new RegExp(`register engine node_id ${idB}`), 8000, mb);
    const after = (await getJson(`http://127.0.0.1:${d.centerApi}/v1/nodes`)).nodes;
    const indexes = (list: { id: string; index: number }[]) => Object.fromEntries(list.map((n) => [n.id, n.index]));
    expect(indexes(after)).toEqual(indexes(before));
    // The client's id still routes to A.
    const onB = await Client.open(url(pb));
    expect(await onB.ask(`send ${id} still here`)).toBe("sent nil");
    expect(await onA.next()).toBe("still here");
    onA.close();
    onB.close();
  }, 20_000);

  test("kill -9 of B: A counts B as a failure until the center drops it, then forgets it", async () => {
    const onA = await Client.open(url(pa)); // publishes
    const subA = await Client.open(url(pa));
    const subB = await Client.open(url(pb));
    await subA.ask("sub k");
    await subB.ask("sub k");
    expect(await onA.ask("pub k x")).toBe("published 2 0");
    const [ma, mc] = [a.mark(), center.node!.mark()];
    await b.stop("SIGKILL");
    const killed = Date.now();
    // Before the center drops B: B's subscriber is not a silent success but one failure.
    expect(await onA.ask("pub k y")).toBe("published 1 1");
    await center.node!.waitFor(new RegExp(`drop node 127.0.0.1 node_id ${idB} \\(no heartbeat for 5s\\)`), 8000, mc);
    expect(Date.now() - killed).toBeLessThan(6500);
    await a.waitFor(new RegExp(`node_id ${idB} left the mesh`), 2000, ma);
    expect(await onA.ask("pub k z")).toBe("published 1 0");
    const { nodes } = await getJson(`http://127.0.0.1:${d.centerApi}/v1/nodes`);
    expect(nodes.map((n: { id: string }) => n.id)).toEqual([idA]);
    expect([await subA.next(), await subA.next(), await subA.next()]).toEqual(["x", "y", "z"]);
    onA.close();
    subA.close();
  }, 15_000);

  test("an engine stopped with SIGTERM leaves at once: the center drops it and A forgets it", async () => {
    const [ma, mc] = [a.mark(), center.node!.mark()];
    b = new Node("engine", join(d.dir, "b.yaml"), d.dir);
    const id = (await b.waitFor(new RegExp(`register engine node_id (${ID})`)))[1]!;
    await a.waitFor(new RegExp(`mesh link to node_id ${id} .* up`), 3000, ma);
    const t0 = Date.now();
    expect(await b.stop("SIGTERM")).toBe(0);
    await center.node!.waitFor(new RegExp(`drop node 127.0.0.1 node_id ${id} \\(stopped\\)`), 3000, mc);
    await a.waitFor(new RegExp(`node_id ${id} left the mesh`), 3000, ma);
    expect(Date.now() - t0).toBeLessThan(4000); // well before the 5 s drop timeout, with room for a loaded machine
  }, 10_000);
});

test("dev runs the center and an engine in one process; the engine registers with it", async () => {
  const d = new ClusterDir();
  const [conf, p] = d.dev();
  const dev = new Node("dev", conf, d.dir);
  try {
    await dev.waitFor(/start the lua server/, 20_000);
    const id = (await dev.waitFor(new RegExp(`register engine node_id (${ID})`)))[1];
    expect(dev.messages().filter((m) => /^(start the (center|registry|mesh)|register)/.test(m))).toEqual([
      `start the center server 127.0.0.1:${d.centerApi}`,
      `start the registry server (127.0.0.1:${d.registry})`,
      `start the mesh point (127.0.0.1:${p.mesh})`,
      `register node 127.0.0.1 node_id ${id}`,
      `register engine node_id ${id}`,
    ]);
    const c = await Client.open(`ws://127.0.0.1:${p.lua}/chat`);
    await c.ask("sub r");
    expect(await c.ask("pub r alone")).toBe("alone");
    expect(await c.next()).toBe("published 1 0");
    c.close();
    expect(await dev.stop()).toBe(0);
  } finally {
    await dev.stop("SIGKILL");
    d.remove();
  }
}, 40_000);

test("an engine whose index was taken while the center was away closes its clients and takes a new index", async () => {
  const d = new ClusterDir();
  let center = new Node("center", d.center(), d.dir);
  const [conf, p] = d.engine("a");
  const a = new Node("engine", conf, d.dir);
  let intruder: RawClient | null = null;
  try {
    await a.waitFor(/start the lua server/, 20_000);
    const client = await Client.open(`ws://127.0.0.1:${p.lua}/chat`);
    const closed = new Promise<number>((r) => client.ws.addEventListener("close", (e) => r(e.code)));
    const old = (await getJson(`http://127.0.0.1:${d.centerApi}/v1/nodes`)).nodes[0].index;
    // Freeze A, replace the center, and let another node claim A's index first.
    process.kill(a.pid, "SIGSTOP");
    await center.stop("SIGKILL");
    center = new Node("center", d.center(), d.dir);
    await center.waitFor(/start the registry server/);
    // A node of the same cluster: it holds the secret (or, without one, is on loopback).
    intruder = await rawClient(d.registry, "registry", d.secret, false, d.tls);
    const reg = JSON.stringify({ t: "register", v: 1, id: "c9gpa43in567ju39lab0", index: old, ip: "", api_port: 1, mesh_port: 2, peers: [] });
    intruder.send((w) => (w.begin(), w.text(reg), w.end()));
    await center.waitFor(/register node 127.0.0.1 node_id c9gpa43in567ju39lab0/);
    const mark = a.mark();
    process.kill(a.pid, "SIGCONT");
    const m = await a.waitFor(/the center assigned node index (\d+) \(was (\d+)\): closing 1 client connections/, 5000, mark);
    expect(Number(m[2])).toBe(old);
    expect(Number(m[1])).not.toBe(old);
    await closed;
    // New clients get ids that carry the new index.
    const again = await Client.open(`ws://127.0.0.1:${p.lua}/chat`);
    const id = Number((await again.ask("id")).split(" ")[1]);
    expect(Math.floor(id / 2 ** 36)).toBe(Number(m[1]));
    again.close();
  } finally {
    intruder?.end();
    process.kill(a.pid, "SIGCONT");
    await Promise.all([a.stop("SIGKILL"), center.stop("SIGKILL")]);
    d.remove();
  }
}, 40_000);

test("an engine whose center accepts the connection but never answers gives up after the drop timeout and retries", async () => {
  const d = new ClusterDir(SHORT); // the engine's own file says 1 s (5 s by default)
  const center = new Node("center", d.center(), d.dir);
  let a: Node | null = null;
  try {
    await center.waitFor(/start the registry server/);
    // A frozen center: the kernel still accepts connections, nothing answers the register.
    process.kill(center.pid, "SIGSTOP");
    a = new Node("engine", d.engine("a")[0], d.dir);
    // With cluster.tls the TLS handshake is part of the connect: it is the connect that times out.
    await a.waitFor(/center registry .* connect failed \((no answer for 1s|connect timed out after 1s)\)/, 8000);
    process.kill(center.pid, "SIGCONT");
    await a.waitFor(/start the lua server/, 20_000);
  } finally {
    process.kill(center.pid, "SIGCONT");
    await Promise.all([a?.stop("SIGKILL"), center.stop("SIGKILL")]);
    d.remove();
  }
}, 30_000);

test("an engine whose connect to the center hangs (no SYN answered) gives up after the drop timeout and retries", async () => {
  const d = new ClusterDir(SHORT); // the engine's own file says 1 s (5 s by default)
  const center = new Node("center", d.center(), d.dir);
  const fillers: { end(): void }[] = [];
  let a: Node | null = null;
  try {
    await center.waitFor(/start the registry server/);
    // A frozen center whose accept queue is full: the kernel drops further SYNs, as for a host that is down.
    process.kill(center.pid, "SIGSTOP");
    for (;;) {
      const s = await Promise.race([Bun.connect({ hostname: "127.0.0.1", port: d.registry, socket: { data() {} } }), Bun.sleep(300)]);
      if (!s) break;
      fillers.push(s);
    }
    a = new Node("engine", d.engine("a")[0], d.dir);
    await a.waitFor(/center registry .* connect failed \(connect timed out after 1s\)/, 9000);
    for (const s of fillers) s.end();
    process.kill(center.pid, "SIGCONT");
    await a.waitFor(/start the lua server/, 15_000);
  } finally {
    for (const s of fillers) s.end();
    process.kill(center.pid, "SIGCONT");
    await Promise.all([a?.stop("SIGKILL"), center.stop("SIGKILL")]);
    d.remove();
  }
}, 40_000);
