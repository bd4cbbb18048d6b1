// Cluster attacks against real node processes: unauthenticated connections that announce huge frames must
// not cost memory, and a local process cannot open a multi-core engine's worker links (it could forge queue
// events and messages), not even with the cluster's secret.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { textOf } from "../../src/mesh/protocol";
import { T, writeHello, writeQueuePush } from "../../src/mesh/protocol";
import { newNodeId } from "../../src/net/node-id";
import { until } from "../helpers/wait.ts";
import { listeningPorts } from "../helpers/ports.ts";
import { ClusterDir, Node } from "./helpers";
import { rawClient } from "./links.ts";

/** Resident memory of a process, in MiB. */
const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

/** A dev node (center and engine) with `cpus` workers, killed and its directory removed after the block. */
function devNode(cpus: string) {
  const d = new ClusterDir();
  const [conf, ports] = d.dev();
  const dev = new Node("dev", conf, d.dir, cpus);
  afterAll(async () => {
    await dev.stop("SIGKILL");
    d.remove();
  });
  return { d, ports, dev };
}

describe("a node under unauthenticated connections", () => {
  const { d, ports, dev } = devNode("1");

  test("40 connections announcing 16 MiB frames are closed at their length prefix; RSS stays flat", async () => {
    await dev.waitFor(/start the lua server/, 15_000);
    Bun.gc(true);
    const before = rssMiB(dev.pid);
    const mib = new Uint8Array(1 << 20).fill(7);
    // With cluster.tls the attacker even holds a certificate of the cluster's CA (not the secret).
    const clients = await Promise.all(Array.from({ length: 40 }, () => rawClient(ports.mesh, undefined, undefined, false, d.tls)));
    await until(() => clients.every((c) => c.frames.length >= 1), 10_000, "the challenges (TLS handshakes done)");
    for (const c of clients) {
      c.raw(new Uint8Array([0x01, 0x00, 0x00, 0x00])); // a 16 MiB frame...
      for (let i = 0; i < 4; i++) c.raw(mib); // ...whose first MiBs follow at once
    }
    await until(() => clients.every((c) => c.closed()), 10_000, "all 40 closed");
    const after = rssMiB(dev.pid);
    console.log(`mesh point RSS: ${before.toFixed(1)} MiB before, ${after.toFixed(1)} MiB after 40 connections`);
    // Before authentication existed this buffered up to 16 MiB each (40 connections: +670 MB). What remains is
    // what the first read of each connection held (about 1 MiB each with TLS, whose records are decrypted whole).
    expect(after - before).toBeLessThan(100);
    for (const c of clients) expect(textOf(c.frames.at(-1)!.subarray(1))).toBe("frame of 16777216 bytes exceeds the limit of 1024 before authentication");
    await dev.waitFor(/mesh point: closing the connection from 127\.0\.0\.1 before authentication: frame of 16777216 bytes/);
    // Ten lines a second at most; the rest are counted in the next line.
    const lines = dev.out.split("\n").filter((l) => l.includes("before authentication: frame of 16777216"));
    expect(lines.length).toBeLessThan(40);
  }, 30_000);
});

describe("worker links of an engine with -p 2", () => {
  const { d, ports, dev } = devNode("2");

  test("a local process cannot open them: forged HELLO and QUEUE frames, or the cluster secret, are refused", async () => {
    await dev.waitFor(/start the lua server/, 20_000);
    const known = new Set([d.registry, d.centerApi, ports.mesh, ports.api, ports.lua, ports.lua2]);
    const links = listeningPorts(dev.pid).filter((p) => !known.has(p));
    expect(links.length).toBe(2); // one per worker
    for (const port of links) {
      // Straight frames, as before links were authenticated: a hello, then a queue event.
      const c = await rawClient(port);
      c.send((w) => {
        writeHello(w, T.HELLO, newNodeId(), 1);
        writeQueuePush(w, 2, "chat", '{"forged":true}', 1);
      });
      await until(() => c.closed(), 3000);
      expect(textOf(c.frames.at(-1)!.subarray(1))).toBe("authentication failed (wrong or missing cluster.secret)");
      // The handshake with the cluster's secret: still not this engine's worker-link secret.
      const s = await rawClient(port, "worker", d.secret || "no-secret-configured", true); // worker links are plain TCP on 127.0.0.1
      expect(s.failure).toBe("refused by the peer: authentication failed (wrong or missing cluster.secret)");
    }
    await dev.waitFor(/worker \d link: closing the connection from 127\.0\.0\.1 before authentication: authentication failed/);
    // The engine goes on: its own worker links are up and a client gets served.
    const res = await fetch(`http://127.0.0.1:${ports.api}/v1/mesh/publish`, { method: "POST", body: JSON.stringify({ c: "room", d: "x" }) });
    expect(res.status).toBe(200);
  }, 40_000);
});
