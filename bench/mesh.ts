// Cluster benchmark: one center and two engines (A, B) as separate `connmix` processes on loopback.
//  1. Cross-node send latency: a client on A, and `mesh.send` requests to it over B's API (/ws/v1) at a
//     fixed RATE for SECONDS; latency = from the request leaving this process to the frame arriving
//     on A's client (same process, same clock): p50, p99, max. Then the same through bench/raw-bun-relay.ts
//     (the same hops and processes with Bun alone): what this machine gives any relay of the same shape.
//  2. Cross-node publish throughput: CONNS subscribers on A; MESSAGES publishes over HTTP (bench/publisher.ts,
//     4 in flight) to B's API (cross-node) and, in the same run, to A's API (single node).
//     Prints deliveries/s of both and their ratio (median of ROUNDS).
//   bun bench/mesh.ts [--rate 10000] [--seconds 5] [--conns 1000] [--messages 200] [--rounds 3] [--secure 1]
// --secure 1 runs the cluster with cluster.secret and mutual TLS on the registry and mesh links
// (certificates made by openssl), to measure what securing the links costs.
import type { Subprocess } from "bun";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../test/helpers/ports.ts";
import { makeCerts } from "../test/helpers/certs.ts";
import { arg, benchDir, fanout, median, open, runConnmix, startRawBun } from "./lib";

const RATE = arg("rate", 10_000);
const SECONDS = arg("seconds", 5);
const CONNS = arg("conns", 1000);
const MESSAGES = arg("messages", 200);
const ROUNDS = arg("rounds", 3);
const SECURE = arg("secure", 0) === 1;

const ENTRY = `
function on_message(msg)
  local conn = mix.websocket()
  if msg.data:sub(1, 4) == "sub " then conn:subscribe(msg.data:sub(5)) end
  conn:send("ok " .. string.format("%d", conn:client_id()))
end
`;

const dir = benchDir("bench-mesh");
const [registry, centerApi] = [freePort(), freePort()];
writeFileSync(join(dir, "entry.lua"), ENTRY);
const procs: Subprocess[] = [];
/** The cluster: section every node gets (none: plain links, loopback only). */
const cluster = (() => {
  if (!SECURE) return "";
  const c = makeCerts();
  return `cluster:\n  secret: bench-cluster-secret-0123456789\n  tls: { cert: ${c.cert}, key: ${c.key}, ca: ${c.ca} }\n`;
})();
const run = (name: string, mode: string, yaml: string) => procs.push(runConnmix(dir, name, mode, cluster + yaml));

function engine(name: string) {
  const [mesh, api, lua] = [freePort(), freePort(), freePort()];
  run(name, "engine", `engine:
  centerRegistry: 127.0.0.1:${registry}
  meshPoint: { port: ${mesh}, bind: 127.0.0.1 }
  apiServer: { port: ${api}, bind: 127.0.0.1 }
  servers:
    - { port: ${lua}, bind: 127.0.0.1, entry: ${dir}/entry.lua, byteCodeExpires: 0, options: [{ name: path, value: /chat }] }\n`);
  return { api, url: `ws://127.0.0.1:${lua}/chat` };
}

async function retry<T>(what: string, fn: () => Promise<T>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw new Error(`${what}: ${(e as Error).message}`);
      await Bun.sleep(100);
    }
  }
}

const pct = (sorted: Float64Array, p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Sends RATE msg/s for SECONDS from B's API (`api`: its /ws/v1) to one client on A; returns latency percentiles in ms. */
async function sendLatency(a: { url: string }, api: string) {
  const total = RATE * SECONDS;
  const lat = new Float64Array(total);
  let received = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  let clientId = "";
  const client = await open(a.url, (d) => {
    if (d.startsWith("ok ")) return void (clientId = d.slice(3));
    const i = d.indexOf(" ");
    lat[Number(d.slice(0, i))] = performance.now() - Number(d.slice(i + 1));
    if (++received === total) done();
  });
  client.send("id");
  await retry("client id", async () => {
    if (!clientId) throw new Error("no id yet");
  });
  let errors = 0;
  const apiSocket = await open(api, (d) => {
    if (!d.startsWith('{"E":null')) errors++;
  });
  // Paced: every turn sends what the schedule says is due by now.
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE));
    for (; sent < due; sent++) {
      apiSocket.send(`{"m":"mesh.send","p":{"c":"${clientId}","d":"${sent} ${performance.now()}"},"i":${sent}}`);
    }
    await Bun.sleep(1);
  }
  await Promise.race([finished, Bun.sleep(10_000)]);
  const elapsed = (performance.now() - t0) / 1000;
  client.close();
  apiSocket.close();
  const sorted = lat.subarray(0, total).sort();
  return {
    rate: RATE,
    achieved_per_s: Math.round(received / elapsed),
    received,
    errors,
    p50_ms: round3(pct(sorted, 0.5)),
    p99_ms: round3(pct(sorted, 0.99)),
    max_ms: round3(sorted[total - 1]!),
  };
}

/** CONNS subscribers on A; MESSAGES publishes to `publishApi`'s /v1/mesh/publish; deliveries per second. */
const roomFanout = (subscribersUrl: string, publishApi: number) =>
  fanout({
    url: subscribersUrl, conns: CONNS, hello: "sub room", publishUrl: `http://127.0.0.1:${publishApi}/v1/mesh/publish`, body: '{"c":"room","d":"hi"}', messages: MESSAGES,
  });

try {
  run("center", "center", `center:\n  registry: { port: ${registry}, bind: 127.0.0.1 }\n  apiServer: { port: ${centerApi}, bind: 127.0.0.1 }\n`);
  const [a, b] = [engine("a"), engine("b")];
  // Ready when a send from B's API reaches a client on A.
  await retry("cluster up", async () => {
    let id = "";
    const c = await open(a.url, (d) => void (id = d.slice(3)));
    c.send("id");
    await Bun.sleep(50);
    const r = await fetch(`http://127.0.0.1:${b.api}/v1/mesh/send`, { method: "POST", body: JSON.stringify({ c: id, d: "x" }) });
    c.close();
    const j = (await r.json()) as { E: unknown };
    if (j.E) throw new Error(JSON.stringify(j.E));
  });
  const latency = await sendLatency(a, `ws://127.0.0.1:${b.api}/ws/v1`);
  console.error(`send latency: ${JSON.stringify(latency)}`);
  const link = String(freePort());
  const rawA = await startRawBun("raw-bun-relay.ts", { ROLE: "a", LINK: link });
  const rawB = await startRawBun("raw-bun-relay.ts", { ROLE: "b", LINK: link });
  procs.push(rawA.proc, rawB.proc);
  const raw = await sendLatency(rawA, `ws://127.0.0.1:${rawB.port}/`);
  console.error(`raw Bun relay: ${JSON.stringify(raw)}`);
  const cross: number[] = [];
  const local: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    cross.push(await roomFanout(a.url, b.api));
    local.push(await roomFanout(a.url, a.api));
    console.error(`round ${r + 1}: cross-node ${cross[r]} /s, single node ${local[r]} /s`);
  }
  console.log(JSON.stringify({
    secure: SECURE,
    send: latency,
    send_raw_bun: raw,
    publish: {
      conns: CONNS,
      messages: MESSAGES,
      rounds: ROUNDS,
      cross_node_deliveries_per_s: median(cross),
      single_node_deliveries_per_s: median(local),
      ratio: Number((median(cross) / median(local)).toFixed(2)),
    },
  }));
} finally {
  for (const p of procs) p.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.exited));
  rmSync(dir, { recursive: true, force: true });
}
