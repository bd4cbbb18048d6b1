// The cluster attacks of issue 14, in one process against real sockets: an outsider on the mesh point or
// the registry, a node with the wrong secret, registrations that claim what a live node holds or carry
// values an engine cannot dial, unauthenticated connections that try to cost memory, and values that try
// to forge log lines. Each worked before links were authenticated and registrations validated.
import { afterAll, describe, expect, test } from "bun:test";
import { ClientIds } from "../../src/net/client-ids";
import { EngineNode } from "../../src/engine/node";
import { Queues } from "../../src/queue/queues";
import { Mesh } from "../../src/mesh/index";
import { MeshPoint, type MeshTarget } from "../../src/mesh/server";
import { T, writeHello, writeSend, writePublish, writeCall, textOf } from "../../src/mesh/protocol";
import { newNodeId } from "../../src/net/node-id";
import { RegistryServer } from "../../src/center/registry";
import { Cluster, newMesh } from "../../src/mesh/cluster";
import { defaultConfig } from "../../src/config/schema";
import { Keys } from "../../src/net/auth";
import { Listener } from "../../src/net/listener";
import { FrameWriter } from "../../src/net/frames";
import { captureLog } from "../helpers/log.ts";
import { freePort } from "../helpers/ports.ts";
import { until } from "../helpers/wait.ts";
import { FAST_MESH, FAST_REGISTRY, MeshNode, SECRET, meshSecurity, rawClient, registrySecurity, settled } from "./links.ts";

const logText = captureLog();
const NODE = 2 ** 36; // one node index in client ids (src/net/client-ids.ts)

/** A mesh point that records every request it is asked to serve. */
function recordingPoint(secrets = [SECRET], timings = FAST_MESH) {
  const served: string[] = [];
  const target: MeshTarget = {
    sendLocal: (id) => (served.push(`send ${id}`), null),
    publishLocal: (ch) => (served.push(`publish ${ch}`), [1, 0]),
    callLocal: (id, method) => (served.push(`call ${id} ${method}`), null),
  };
  const point = new MeshPoint(target, { id: newNodeId() }, meshSecurity(secrets, timings));
  point.listen("127.0.0.1", 0);
  return { point, served };
}

/** HELLO with any id, then SEND, PUBLISH and conn.call set_context_value uid=admin: the attack on the mesh point. */
function inject(w: FrameWriter): void {
  writeHello(w, T.HELLO, newNodeId(), 7);
  writeSend(w, 2, NODE + 1, "injected", 1);
  writePublish(w, 3, "room:1", "injected", 1);
  writeCall(w, 4, NODE + 1, "set_context_value", ["uid", "admin"]);
}

describe("the mesh point", () => {
  const { point, served } = recordingPoint();
  afterAll(() => point.stop());

  test("an outsider's HELLO, SEND, PUBLISH and CALL are refused before any is served", async () => {
    const c = await rawClient(point.port); // no handshake: frames straight away
    c.send(inject);
    await until(() => c.closed(), 5000);
    expect(served).toEqual([]);
    expect(c.frames.map((f) => f[0])).toEqual([0xa1, 0xa4]); // the challenge, then the refusal
    expect(textOf(c.frames[1]!.subarray(1))).toBe("authentication failed (wrong or missing cluster.secret)");
    await until(() => logText().includes("mesh point: closing the connection from 127.0.0.1 before authentication: authentication failed"), 5000);
  });

  test("a node with another secret is refused, and says so", async () => {
    const c = await rawClient(point.port, "mesh", "another-secret-0123456789", true);
    expect(c.failure).toBe("refused by the peer: authentication failed (wrong or missing cluster.secret)");
    await until(() => c.closed(), 5000);
    expect(served).toEqual([]);
  });

  test("with the secret, the same frames are served (the test above can fail)", async () => {
    const c = await rawClient(point.port, "mesh");
    c.send(inject);
    await until(() => c.frames.length === 4, 5000);
    expect(served).toEqual([`send ${NODE + 1}`, "publish room:1", `call ${NODE + 1} set_context_value`]);
    c.end();
  });

  test("a frame over 1 KiB before authentication closes the connection at its length prefix", async () => {
    const c = await rawClient(point.port);
    c.raw(new Uint8Array([0x01, 0x00, 0x00, 0x00])); // 16 MiB announced
    await until(() => c.closed(), 5000);
    expect(textOf(c.frames[1]!.subarray(1))).toBe("frame of 16777216 bytes exceeds the limit of 1024 before authentication");
  });
});

test("a mesh link to a peer with another secret is never up; both sides log it with the other's address", async () => {
  const { point, served } = recordingPoint(["the-peers-own-secret-0123"]);
  const mesh = new Mesh(newNodeId(), settled(), meshSecurity());
  const peerId = newNodeId();
  try {
    mesh.update([{ id: peerId, index: 5, ip: "127.0.0.1", meshPort: point.port }], true);
    await until(() => logText().includes(`mesh link to node_id ${peerId} (127.0.0.1:${point.port}) down: refused by the peer: authentication failed`), 5000);
    expect(logText()).toContain("mesh point: closing the connection from 127.0.0.1 before authentication: authentication failed");
    expect(await mesh.sendRemote(5 * NODE + 1, "x", 1)).toStartWith(`node ${peerId} unreachable`);
    expect(await mesh.publishRemote("room", "x", 1)).toEqual([0, 1]);
    expect(mesh.forwardFailures()).toBe(2); // what /metrics shows as connmix_engine_mesh_forward_failures_total
    expect(served).toEqual([]);
  } finally {
    mesh.stop();
    point.stop();
  }
});

test("a dialer refuses a listener that does not prove the secret (a fake mesh point)", async () => {
  // A listener that takes any dialer: it accepts every proof, but proves with a secret of its own.
  const keys = new Keys(["an-impostors-secret-012345"]);
  keys.accepts = () => true;
  let opened = 0;
  let framesSeen = 0;
  const fake = new Listener<object>(
    { name: "fake", kind: "mesh", keys, tls: null, maxFrame: 1 << 20, maxUnsent: 1 << 20, maxUnauthenticated: 8, timings: { handshakeMs: 1000, idleMs: 0, sweepMs: 100 } },
    { open: () => (opened++, {}), frame: () => void framesSeen++, refuse: (c) => c.end() },
  );
  fake.listen("127.0.0.1", 0);
  const mesh = new Mesh(newNodeId(), settled(), meshSecurity());
  const peerId = newNodeId();
  try {
    mesh.update([{ id: peerId, index: 6, ip: "127.0.0.1", meshPort: fake.port }], true);
    await until(() => logText().includes(`(127.0.0.1:${fake.port}) down: the peer failed authentication (it does not hold this node's cluster.secret)`), 5000);
    expect(opened).toBeGreaterThan(0); // it took this node for a peer...
    expect(framesSeen).toBe(0); // ...but got nothing past the handshake: no hello, no request
    expect(await mesh.sendRemote(6 * NODE + 1, "x", 1)).toStartWith(`node ${peerId} unreachable`);
  } finally {
    mesh.stop();
    fake.stop();
  }
});

test("unauthenticated connections are capped per port and closed after the handshake deadline", async () => {
  const { point } = recordingPoint([SECRET], { ...FAST_MESH, handshakeMs: 800 });
  try {
    const idle = await Promise.all(Array.from({ length: 70 }, () => rawClient(point.port)));
    await until(() => idle.filter((c) => c.closed()).length === 6, 2000, "the 6 past the cap refused");
    const refused = idle.filter((c) => c.closed());
    for (const c of refused) expect(textOf(c.frames.at(-1)!.subarray(1))).toBe("too many unauthenticated connections (64)");
    await until(() => idle.every((c) => c.closed()), 3000, "the others closed at the deadline");
    const late = idle.find((c) => !refused.includes(c))!;
    expect(textOf(late.frames.at(-1)!.subarray(1))).toBe("no authentication within 0.8s");
    // A node of the cluster gets in once they are gone.
    (await rawClient(point.port, "mesh")).end();
  } finally {
    point.stop();
  }
});

describe("the registry", () => {
  const registry = new RegistryServer(registrySecurity());
  const port = freePort();
  registry.listen("127.0.0.1", port);
  let beat: Timer | undefined;
  afterAll(() => {
    clearInterval(beat);
    registry.stop();
  });
  const msg = (f: Uint8Array) => JSON.parse(textOf(f));
  const register = (fields: object) => (w: FrameWriter) => {
    w.begin();
    w.text(JSON.stringify({ t: "register", v: 1, index: 0, ip: "", api_port: 7001, mesh_port: 7002, peers: [], ...fields }));
    w.end();
  };
  let victim: { id: string; index: number; client: Awaited<ReturnType<typeof rawClient>> };

  test("a victim engine registers", async () => {
    const client = await rawClient(port, "registry");
    const id = newNodeId();
    client.send(register({ id, ip: "127.0.0.5", mesh_port: 7102 }));
    await until(() => client.frames.length >= 2, 5000);
    victim = { id, index: msg(client.frames[0]!).index, client };
    // It heartbeats as an engine does, so it stays live (and listed) whatever the machine's load.
    beat = setInterval(() => client.send((w) => (w.begin(), w.text('{"t":"hb","clients":0}'), w.end())), FAST_REGISTRY.timings.hb / 2);
  });

  test("an outsider's register claiming the victim's index and address is refused: no fake node, no disconnect", async () => {
    const c = await rawClient(port);
    c.send(register({ id: newNodeId(), index: victim.index, ip: "127.0.0.5", mesh_port: 7102, api_port: 6666 }));
    await until(() => c.closed(), 5000);
    expect([...registry.nodes.keys()]).toEqual([victim.id]); // no fake api_server for /v1/nodes
    expect(victim.client.closed()).toBe(false);
    expect(registry.nodes.get(victim.id)!.session).not.toBeNull();
  });

  test("even with the secret, a connection cannot take a live node's id or mesh address", async () => {
    const sameId = await rawClient(port, "registry");
    sameId.send(register({ id: victim.id, ip: "127.0.0.9" }));
    await until(() => sameId.closed(), 5000);
    expect(msg(sameId.frames[0]!)).toEqual({ t: "error", m: `node_id ${victim.id} is registered on another live connection` });
    const sameAddr = await rawClient(port, "registry");
    sameAddr.send(register({ id: newNodeId(), index: victim.index, ip: "127.0.0.5", mesh_port: 7102 }));
    await until(() => sameAddr.closed(), 5000);
    expect(msg(sameAddr.frames[0]!).m).toBe(`mesh address 127.0.0.5:7102 belongs to live node_id ${victim.id}`);
    expect(registry.nodes.get(victim.id)).toMatchObject({ ip: "127.0.0.5", mesh_port: 7102, index: victim.index });
  });

  test("an ip that is not an IP literal (NUL, a newline, a host name) is refused, and the log stays one line each", async () => {
    for (const ip of ["\u0000", "10.0.0.1\n2026-01-01 00:00:00.000000\tERROR\tforged", "example.com", "x".repeat(70_000)]) {
      const c = await rawClient(port, "registry");
      c.send(register({ id: newNodeId(), ip }));
      await until(() => c.closed(), 5000);
      expect(msg(c.frames[0]!)).toEqual({ t: "error", m: "ip must be an IP address (or empty for the address the center sees)" });
    }
    const forged = await rawClient(port, "registry");
    forged.send(register({ v: "1\n2026-01-01 00:00:00.000000\tERROR\tforged", id: newNodeId() }));
    await until(() => forged.closed(), 5000);
    await until(() => logText().includes("registry protocol version 1\\n2026"), 5000);
    expect(logText()).not.toMatch(/^2026-01-01/m);
    expect([...registry.nodes.keys()]).toEqual([victim.id]);
  });

  test("bad ports, index and peers are refused, saying which", async () => {
    const cases: [object, string][] = [
      [{ mesh_port: 70000 }, "invalid ports"],
      [{ index: 1.5 }, "invalid node index"],
      [{ index: 1024 }, "invalid node index"],
      [{ peers: "all" }, "peers must be a list of at most 1023 [node id, index]"],
    ];
    for (const [fields, error] of cases) {
      const c = await rawClient(port, "registry");
      c.send(register({ id: newNodeId(), ...fields }));
      await until(() => c.closed(), 5000);
      expect(msg(c.frames[0]!)).toEqual({ t: "error", m: error });
    }
  });
});

test("an engine skips a listed node it cannot dial (logged once) and keeps every other peer", async () => {
  // A center (speaking the registry protocol for real) that lists two nodes nobody can dial and one real peer.
  const peer = new MeshNode();
  peer.assignIndex(9);
  const good = { id: peer.id, index: 9, ip: "127.0.0.1", api_port: 1, mesh_port: peer.port };
  const bad = [
    { id: newNodeId(), index: 10, ip: "\u0000", api_port: 1, mesh_port: 2 },
    { id: newNodeId(), index: 11, ip: "10.0.0.1\nforged line", api_port: 1, mesh_port: 2 },
  ];
  const lists: number[] = [];
  const center = new Listener<object>(
    { name: "fake center", kind: "registry", keys: new Keys([SECRET]), tls: null, maxFrame: 1 << 20, maxUnsent: 1 << 20, maxUnauthenticated: 8, timings: { handshakeMs: 1000, idleMs: 0, sweepMs: 100 } },
    {
      open: () => ({}),
      frame: (c, f) => {
        const m = JSON.parse(textOf(f));
        if (m.t !== "register") return;
        const say = (o: object) => (c.out!.begin(), c.out!.text(JSON.stringify(o)), c.out!.end());
        say({ t: "registered", index: 3, ip: "127.0.0.1" });
        for (let i = 0; i < 3; i++) say({ t: "nodes", complete: true, nodes: [...bad, good, { id: m.id, index: 3, ip: "127.0.0.1", api_port: 1, mesh_port: 1 }] });
        c.out!.flush();
        lists.push(3);
      },
      refuse: (c) => c.end(),
    },
  );
  center.listen("127.0.0.1", 0);
  const config = defaultConfig();
  config.engine.centerRegistry = `127.0.0.1:${center.port}`;
  const security = { keys: new Keys([SECRET]), tls: null, stop() {} };
  const { mesh, membership, links } = newMesh(config, security);
  const node = new EngineNode(new ClientIds(1), new Queues({ topicSize: 10, maxTopics: 10 }), { peers: mesh, name: mesh.id });
  const cluster = new Cluster(config, { node, mesh, membership, point: new MeshPoint(node, mesh, links) }, security);
  try {
    await cluster.register();
    await until(() => cluster.mesh.hasPeers(), 5000);
    await until(() => logText().includes(`mesh link to node_id ${peer.id}`), 5000);
    // The good peer answers: no failure counted (a bad peer kept, or the list thrown away, would show).
    expect(await cluster.mesh.publishRemote("room", "hi", 1)).toEqual([0, 0]);
    expect(cluster.mesh.known().map(([id]) => id)).toEqual([peer.id]);
    const skipped = logText().split("\n").filter((l) => l.includes("the center listed a node that cannot be dialed"));
    expect(skipped.length).toBe(2); // three lists, each bad node logged once
    expect(skipped[0]).toContain("(ip is not an IP address), skipped: ");
    expect(skipped[0]).toContain("\\u0000");
    expect(skipped[1]).toContain("10.0.0.1\\nforged line");
    expect(logText()).not.toMatch(/^forged line/m);
  } finally {
    cluster.stop();
    peer.stop();
    center.stop();
  }
});

test("a peer's node id and refusal text are escaped in log lines", async () => {
  const { point } = recordingPoint();
  try {
    const c = await rawClient(point.port, "mesh");
    c.send((w) => writeHello(w, T.HELLO, "evil\n2026-01-01 00:00:00.000000\tERROR\tforged\u0000", 1));
    c.raw(new Uint8Array([0, 0, 0, 1, 99])); // a short frame: the link is closed, naming the peer
    await until(() => c.closed(), 5000);
    await until(() => logText().includes("closing the link from node_id evil\\n2026-01-01"), 5000);
    expect(logText()).toContain("forged\\x00: short frame");
    expect(logText()).not.toMatch(/^2026-01-01/m);
  } finally {
    point.stop();
  }
});
