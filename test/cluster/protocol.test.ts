// The node-to-node and registry protocols against real sockets, in one process: a mesh point answering
// raw frames (including bad ones), a peer that stops answering or reading, and the registry's refusals.
import { afterAll, afterEach, beforeEach, describe, expect, setSystemTime, test } from "bun:test";
import { Mesh } from "../../src/mesh/index";
import { FrameWriter } from "../../src/net/frames";
import { Listener } from "../../src/net/listener";
import { T, writeHello, writeText, writeSend, writePublish, readU32, textOf } from "../../src/mesh/protocol";
import { newNodeId } from "../../src/net/node-id";
import { RegistryServer } from "../../src/center/registry";
import { startCenterApi } from "../../src/center/http";
import { defaultConfig } from "../../src/config/schema";
import { freePort } from "../helpers/ports.ts";
import { until } from "../helpers/wait.ts";
import { FAST_MESH, FAST_REGISTRY, newNode, meshSecurity, rawClient, registrySecurity, settled } from "./links.ts";
import { MeshPoint } from "../../src/mesh/server";

const NODE = 2 ** 36;


/** connmix_center_registry_refused_total by reason, from the /metrics of a center API over `registry`. */
async function refusals(registry: RegistryServer): Promise<Record<string, number>> {
  const config = defaultConfig();
  config.center.apiServer = { bind: "127.0.0.1", port: freePort(), tls: null };
  const api = startCenterApi(config, registry);
  try {
    const text = await (await fetch(`http://127.0.0.1:${config.center.apiServer.port}/metrics`)).text();
    return Object.fromEntries([...text.matchAll(/^connmix_center_registry_refused_total\{reason="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
  } finally {
    await api.stop();
  }
}

/** A mesh frame as [type, request id, body as text]. */
const meshFrame = (f: Uint8Array): [number, number, string] => [f[0]!, readU32(f, 1), textOf(f.subarray(5))];

describe("mesh point", () => {
  const node = newNode();
  const mesh = new Mesh(newNodeId(), settled(), meshSecurity());
  const point = new MeshPoint(node, mesh, meshSecurity());
  const port = freePort();
  point.listen("127.0.0.1", port);
  afterAll(() => point.stop());

  test("refuses a hello of another protocol version with a BYE that says why", async () => {
    const c = await rawClient(port, "mesh");
    c.send((w) => {
      w.begin();
      w.u8(T.HELLO);
      w.u32(0);
      w.u8(9);
      w.u16(3);
      w.shortText(newNodeId());
      w.end();
    });
    await until(() => c.closed(), 2000);
    expect(c.frames.map(meshFrame)).toEqual([[T.BYE, 0, "mesh protocol version 9 is not supported (this node speaks 1)"]]);
  });

  test("a link that received one large frame does not keep a buffer of its size", async () => {
    const c = await rawClient(port, "mesh");
    c.send((w) => writeHello(w, T.HELLO, newNodeId(), 3));
    await until(() => c.frames.length === 1, 2000); // the welcome
    Bun.gc(true);
    const before = process.memoryUsage().arrayBuffers;
    await (async () => {
      const w = new FrameWriter();
      writePublish(w, 77, "big", new Uint8Array(12 << 20), 2);
      const frame = w.frame();
      for (let at = 0; at < frame.length; await Bun.sleep(1)) at += Math.max(0, c.raw(frame.subarray(at)));
    })();
    await until(() => c.frames.length === 2, 5000); // its COUNTS
    Bun.gc(true);
    expect((process.memoryUsage().arrayBuffers - before) >> 20).toBeLessThan(4);
    c.end();
  }, 15_000);

  test("closes a link whose framing is broken, and keeps serving others", async () => {
    const bad = await rawClient(port, "mesh");
    bad.raw(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    await until(() => bad.closed(), 2000);
    expect(meshFrame(bad.frames[0]!)[2]).toMatch(/^frame of 4294967295 bytes exceeds the limit/);

    const c = await rawClient(port, "mesh");
    c.send((w) => writeHello(w, T.HELLO, newNodeId(), 5));
    await until(() => c.frames.length === 1, 2000);
    expect(meshFrame(c.frames[0]!)[0]).toBe(T.WELCOME);
    expect(meshFrame(c.frames[0]!)[2]).toContain(mesh.id);
    c.send((w) => writeSend(w, 11, NODE + 42, "hi", 1));
    c.send((w) => writePublish(w, 12, "nobody", new Uint8Array([1, 2]), 2));
    c.send((w) => {
      w.begin();
      w.u8(99);
      w.u32(13);
      w.end();
    });
    c.send((w) => {
      w.begin();
      w.u8(T.CALL);
      w.u32(14);
      w.f64(NODE + 42);
      w.text("{not json");
      w.end();
    });
    await until(() => c.frames.length === 5, 2000);
    expect(c.frames.slice(1).map(meshFrame).map(([t, r, body]) => [t, r, t === T.COUNTS ? "" : body])).toEqual([
      [T.RESULT, 11, "client not found"],
      [T.COUNTS, 12, ""],
      [T.RESULT, 13, "unknown mesh request type 99"],
      [T.RESULT, 14, "invalid conn.call request"],
    ]);
    c.end();
  });
});

/** A fake peer: authenticates and answers the hello, then nothing (like a frozen process); `read: false` also stops reading. */
async function silentPeer(id: string, read: boolean) {
  const sec = meshSecurity();
  const listener = new Listener<object>(
    { name: "silent peer", kind: "mesh", keys: sec.keys, tls: null, maxFrame: 1 << 20, maxUnsent: 1 << 20, maxUnauthenticated: 8, timings: { handshakeMs: 1000, idleMs: 0, sweepMs: 100 } },
    {
      open: () => ({}),
      frame: (c, f) => {
        if (peer.welcomed || f[0] !== T.HELLO) return;
        writeHello(c.out!, T.WELCOME, id, 0);
        c.out!.flush();
        peer.welcomed = true;
        if (!read) c.socket.pause();
      },
      refuse: (c) => c.end(),
    },
  );
  listener.listen("127.0.0.1", 0);
  const peer = { port: listener.port, welcomed: false, stop: () => listener.stop() };
  return peer;
}

/** A mesh whose one peer, at `index`, is a silentPeer that has welcomed it. */
async function meshWithSilentPeer(index: number, read: boolean, timings = FAST_MESH) {
  const mesh = new Mesh(newNodeId(), settled(), meshSecurity(undefined, timings));
  const peerId = newNodeId();
  const peer = await silentPeer(peerId, read);
  const stop = () => {
    mesh.stop();
    peer.stop();
  };
  try {
    mesh.update([{ id: peerId, index, ip: "127.0.0.1", meshPort: peer.port }], true);
    await until(() => peer.welcomed, 2000);
    await Bun.sleep(50); // the dialer reads the welcome
  } catch (e) {
    stop();
    throw e;
  }
  return { mesh, peerId, stop };
}

describe("a peer that stops answering", () => {
  test("a send times out with an error and a publish counts the peer as failed", async () => {
    const { mesh, peerId, stop } = await meshWithSilentPeer(7, true);
    try {
      const idOnPeer = 7 * NODE + 1;
      const t0 = Date.now();
      const [sent, published] = await Promise.all([mesh.sendRemote(idOnPeer, "x", 1), mesh.publishRemote("ch", "y", 1)]);
      const ms = Date.now() - t0;
      expect(sent).toMatch(new RegExp(`^node ${peerId} (timed out after 0.6s|unreachable \\(no answer for 0.6s\\))$`));
      expect(published).toEqual([0, 1]);
      expect(ms).toBeGreaterThan(FAST_MESH.requestMs - 100);
      expect(ms).toBeLessThan(FAST_MESH.requestMs + 1500);
    } finally {
      stop();
    }
  }, 10_000);
});

test("a peer that stops reading: requests are refused as congested instead of buffering without bound", async () => {
  // Filling 8 MiB takes a while on a busy machine: the link must not give the silent peer up first.
  const { mesh, peerId, stop } = await meshWithSilentPeer(9, false, { ...FAST_MESH, silentMs: 5000, requestMs: 5000 });
  try {
    const mib = new Uint8Array(1 << 20);
    const results: (string | null)[] = [];
    for (let i = 0; i < 64 && !results.some((r) => r?.includes("congested")); i++) {
      // Each send is queued (its reply would time out later); the outbox flushes between iterations.
      void mesh.sendRemote(9 * NODE + 1, mib, 2).then((r) => results.push(r));
      await Bun.sleep(1);
    }
    expect(results.find((r) => r?.includes("congested"))).toBe(`node ${peerId} congested (8 MiB unsent)`);
    expect(await mesh.publishRemote("ch", "x", 1)).toEqual([0, 1]);
  } finally {
    stop();
  }
}, 10_000);

describe("registry", () => {
  // A fresh center per test: its first drop timeout is "unsettled" (partial lists, reserved indexes).
  let registry: RegistryServer;
  let port = 0;
  beforeEach(() => {
    registry = new RegistryServer(registrySecurity());
    port = freePort();
    registry.listen("127.0.0.1", port);
  });
  afterEach(() => registry.stop());
  const msg = (f: Uint8Array) => JSON.parse(textOf(f));
  let meshPort = 1000;
  const register = (over: object) => (w: FrameWriter) => {
    w.begin();
    w.text(JSON.stringify({ t: "register", v: 1, id: newNodeId(), index: 0, ip: "", api_port: 999, mesh_port: ++meshPort, peers: [], ...over }));
    w.end();
  };

  test("refuses another protocol version and an invalid node id, saying why", async () => {
    const c = await rawClient(port, "registry");
    c.send(register({ v: 2 }));
    await until(() => c.closed(), 2000);
    expect(c.frames.map(msg)).toEqual([{ t: "error", m: "registry protocol version 2 is not supported (the center speaks 1)" }]);
    const d = await rawClient(port, "registry");
    d.send(register({ id: "NOT-AN-ID" }));
    await until(() => d.closed(), 2000);
    expect(d.frames.map(msg)).toEqual([{ t: "error", m: "invalid node id" }]);
    expect(registry.nodes.size).toBe(0);
    // Both are counted on the center API's /metrics, and so is one that speaks before registering.
    const e = await rawClient(port, "registry");
    e.send((w) => (w.begin(), w.text(JSON.stringify({ t: "hb", clients: 1 })), w.end()));
    await until(() => e.closed(), 2000);
    expect(await refusals(registry)).toEqual({ protocol: 1, invalid: 2, address_taken: 0, no_index: 0, not_reading: 0, no_register: 0 });
  });

  test("assigns distinct indexes, gives a node its previous index when free, and lists the nodes", async () => {
    const a = await rawClient(port, "registry");
    const idA = newNodeId();
    a.send(register({ id: idA, index: 321 }));
    await until(() => a.frames.length >= 2, 2000);
    // A fresh center's lists only add, so no engine forgot A: it counts as listed. The timings are the center's.
    expect(msg(a.frames[0]!)).toEqual({ t: "registered", index: 321, ip: "127.0.0.1", listed: true, ...FAST_REGISTRY.timings });
    const b = await rawClient(port, "registry");
    const idB = newNodeId();
    b.send(register({ id: idB, index: 321, ip: "10.1.2.3" })); // taken: gets another
    await until(() => b.frames.length >= 2, 2000);
    const got = msg(b.frames[0]!);
    expect(got.t).toBe("registered");
    expect(got.index).not.toBe(321);
    expect(got.ip).toBe("10.1.2.3");
    // A fresh center's lists are partial (engines only add from them) until it has waited out DROP_MS.
    expect(msg(b.frames[1]!)).toEqual({
      t: "nodes",
      complete: false,
      nodes: [
        { id: idA, index: 321, ip: "127.0.0.1", api_port: 999, mesh_port: meshPort - 1 },
        { id: idB, index: got.index, ip: "10.1.2.3", api_port: 999, mesh_port: meshPort },
      ],
    });
    a.send((w) => {
      w.begin();
      w.text('{"t":"hb","clients":12}');
      w.end();
    });
    await until(() => registry.clients() === 12, 2000);
    // A node that leaves is dropped at once and the others are told.
    const before = b.frames.length;
    a.send((w) => {
      w.begin();
      w.text('{"t":"leave"}');
      w.end();
    });
    await until(() => b.frames.length > before, 2000);
    expect(msg(b.frames.at(-1)!).nodes.map((n: { id: string }) => n.id)).toEqual([idB]);
    a.end();
    b.end();
  });

  test("while fresh, keeps the indexes that re-registering engines report for their peers", async () => {
    const [idA, idB] = [newNodeId(), newNodeId()];
    const b = await rawClient(port, "registry");
    b.send(register({ id: idB, index: 500, peers: [[idA, 77]] }));
    const c = await rawClient(port, "registry");
    c.send(register({ index: 77 })); // a newcomer that asks for A's index
    const a = await rawClient(port, "registry");
    a.send(register({ id: idA, index: 77 }));
    await until(() => a.frames.length > 0 && c.frames.length > 0, 2000);
    expect(msg(c.frames[0]!).index).not.toBe(77);
    expect(msg(a.frames[0]!)).toMatchObject({ t: "registered", index: 77 });
    for (const x of [a, b, c]) x.end();
  });

  test("a register whose peers list holds malformed entries is answered (they are ignored)", async () => {
    const c = await rawClient(port, "registry");
    const id = newNodeId();
    c.send(register({ id, peers: [null, 5, "x", [newNodeId(), 900]] }));
    await until(() => c.frames.length >= 2, 2000);
    expect(msg(c.frames[0]!)).toMatchObject({ t: "registered" });
    expect(msg(c.frames[1]!).nodes.map((n: { id: string }) => n.id)).toContain(id);
    c.end();
  });

  test("a step of the wall clock (NTP, a resumed VM) does not drop a node that keeps its heartbeats", async () => {
    const c = await rawClient(port, "registry");
    const id = newNodeId();
    c.send(register({ id }));
    await until(() => registry.nodes.has(id), 2000);
    const beat = setInterval(() => c.send((w) => (w.begin(), w.text('{"t":"hb","clients":0}'), w.end())), 100);
    try {
      setSystemTime(new Date(Date.now() + 60_000));
      await Bun.sleep(2 * FAST_REGISTRY.timings.drop);
      expect(registry.nodes.has(id)).toBe(true);
    } finally {
      setSystemTime();
      clearInterval(beat);
      c.end();
    }
  });

  test("a new node on the mesh address of a gone one replaces it at once; a live one keeps its address", async () => {
    const [old, next] = [newNodeId(), newNodeId()];
    const a = await rawClient(port, "registry");
    a.send(register({ id: old, ip: "10.9.9.9", mesh_port: 4242 }));
    await until(() => registry.nodes.has(old), 2000);
    const thief = await rawClient(port, "registry");
    thief.send(register({ ip: "10.9.9.9", mesh_port: 4242 }));
    await until(() => thief.closed(), 2000);
    expect(thief.frames.map(msg)).toEqual([{ t: "error", m: `mesh address 10.9.9.9:4242 belongs to live node_id ${old}` }]);
    expect((await refusals(registry)).address_taken).toBe(1);
    expect(registry.nodes.has(old)).toBe(true);
    a.end(); // the old process is gone: its connection closed
    await until(() => registry.nodes.get(old)?.session === null, 2000);
    const b = await rawClient(port, "registry");
    b.send(register({ id: next, ip: "10.9.9.9", mesh_port: 4242 }));
    await until(() => registry.nodes.has(next), 2000);
    expect(registry.nodes.has(old)).toBe(false);
    b.end();
  });
});

describe("registry with short timings", () => {
  const timings = { hb: 100, drop: 400, doubt: 2000 };
  const registry = new RegistryServer(registrySecurity(undefined, { ...FAST_REGISTRY, timings }));
  const born = performance.now();
  const port = freePort();
  registry.listen("127.0.0.1", port);
  afterAll(() => registry.stop());
  const msg = (f: Uint8Array) => JSON.parse(textOf(f));
  const register = (id: string) => (w: FrameWriter) => {
    w.begin();
    w.text(JSON.stringify({ t: "register", v: 1, id, index: 0, ip: "", api_port: 1000, mesh_port: 1001, peers: [] }));
    w.end();
  };

  test("a connection that does not register within the drop timeout is closed, saying why", async () => {
    const c = await rawClient(port, "registry");
    await until(() => c.closed(), 2000);
    expect(c.frames.map(msg)).toEqual([{ t: "error", m: "no register within 0.4s" }]);
    expect((await refusals(registry)).no_register).toBe(1);
  });

  test("a node dropped for silence is told on its return that it was not listed; a listed one is told it was", async () => {
    await until(() => performance.now() - born > 2 * timings.drop, 2000); // settled: its lists are complete
    const id = newNodeId();
    const a = await rawClient(port, "registry");
    a.send(register(id));
    await until(() => a.frames.length >= 1, 2000);
    // New to this settled center: not listed (an engine registering for the first time has no clients to resync).
    expect(msg(a.frames[0]!)).toEqual({ t: "registered", index: expect.any(Number), ip: "127.0.0.1", listed: false, ...timings });
    // Registering again while listed (a lost connection: the center saw it close): listed.
    a.end();
    await until(() => registry.nodes.get(id)?.session === null, 2000);
    const b = await rawClient(port, "registry");
    b.send(register(id));
    await until(() => b.frames.length >= 1, 2000);
    expect(msg(b.frames[0]!)).toMatchObject({ t: "registered", listed: true });
    // No heartbeat: dropped after 0.4 s; registering after that: not listed.
    await until(() => !registry.nodes.has(id), 2000);
    const c = await rawClient(port, "registry");
    c.send(register(id));
    await until(() => c.frames.length >= 1, 2000);
    expect(msg(c.frames[0]!)).toMatchObject({ t: "registered", listed: false });
    for (const x of [a, b, c]) x.end();
  });
});

test("a link whose connect hangs (the peer's SYNs dropped) is up within seconds once the peer is back", async () => {
  // The peer: a real mesh point in a child process, frozen with its accept queue full, so SYNs go unanswered.
  const peerId = newNodeId();
  const script = `import { MeshPoint } from ${JSON.stringify(`${import.meta.dir}/../../src/mesh/server.ts`)};
    import { meshSecurity } from ${JSON.stringify(`${import.meta.dir}/links.ts`)};
    const p = new MeshPoint({ sendLocal: () => "client not found", publishLocal: () => [0, 0], callLocal: () => null }, { id: "${peerId}" }, meshSecurity());
    p.listen("127.0.0.1", 0);
    console.log(p.port);`;
  const child = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "ignore" });
  const port = Number(new TextDecoder().decode((await child.stdout.getReader().read()).value).trim());
  const mesh = new Mesh(newNodeId(), settled(), meshSecurity());
  const fillers: { end(): void }[] = [];
  try {
    process.kill(child.pid, "SIGSTOP");
    for (;;) {
      const s = await Promise.race([Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }), Bun.sleep(300)]);
      if (!s) break;
      fillers.push(s);
    }
    mesh.update([{ id: peerId, index: 5, ip: "127.0.0.1", meshPort: port }], true);
    // The kernel's SYN retries space out (after 1, 3, 7, 15 s): a connect left to them would answer at 7 s.
    await Bun.sleep(3500);
    for (const s of fillers) s.end();
    process.kill(child.pid, "SIGCONT");
    const t0 = performance.now();
    let answer: string | null = "";
    // (The fillers' connections reach the peer too when it resumes: they hold its unauthenticated slots until they close.)
    while (performance.now() - t0 < 6000 && (answer = await mesh.sendRemote(5 * NODE + 1, "x", 1)) !== "client not found") await Bun.sleep(20);
    expect(answer).toBe("client not found"); // the peer answered: the link is up
  } finally {
    for (const s of fillers) s.end();
    mesh.stop();
    child.kill("SIGKILL");
  }
}, 15_000);
