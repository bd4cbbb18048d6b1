// Handover benchmark: connections per second a node accepts while it hands over to a successor (SIGUSR2,
// `connmix reload`) against its steady state. One `connmix single -p CPUS` on loopback; LOOPS clients each open
// a WebSocket to the Lua port, wait for the upgrade, close it and open the next, for the whole run.
//  - steady: connections completed per second in the SECONDS before the reload;
//  - handover: per second from the SIGUSR2 until one second after the successor wrote its pid file (it
//    serves; the old process closes its listeners 0.1 s later): the successor's start-up (a second Bun
//    runtime, its Lua VMs) shares the CPUs with the old process in this window.
// Failed connects (refused, reset) are counted. ROUNDS reloads in a row (each successor is reloaded next);
// medians are printed.
//   bun bench/handover.ts [--seconds 3] [--loops 8] [--cpus 1] [--rounds 3]
import { rmSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../test/helpers/ports.ts";
import { waitForPort } from "../test/helpers/ports.ts";
import { arg, benchDir, median, runConnmix } from "./lib";

const SECONDS = arg("seconds", 3);
const LOOPS = arg("loops", 8);
const CPUS = arg("cpus", 1);
const ROUNDS = arg("rounds", 3);

const dir = benchDir("bench-handover");
const [lua, api, registry, center, mesh] = [freePort(), freePort(), freePort(), freePort(), freePort()];
await Bun.write(join(dir, "entry.lua"), "function on_message(msg) end\n");
const first = runConnmix(dir, "connmix", "single", `
center: { registry: { port: ${registry}, bind: 127.0.0.1 }, apiServer: { port: ${center}, bind: 127.0.0.1 } }
engine:
  centerRegistry: 127.0.0.1:${registry}
  drainTimeout: 5
  meshPoint: { port: ${mesh}, bind: 127.0.0.1 }
  apiServer: { port: ${api}, bind: 127.0.0.1 }
  servers: [{ port: ${lua}, bind: 127.0.0.1, entry: entry.lua, byteCodeExpires: 0, options: [{ name: path, value: /ws }] }]
`, CPUS);
const pidFile = join(dir, "connmix.single.pid");
const pid = () => (existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8")) : 0);

await waitForPort(lua, 20_000);
while (!pid()) await Bun.sleep(50);

const done: number[] = []; // completion times (performance.now()) of successful connections
const failed: number[] = [];
const errors = new Set<string>();
let running = true;
const url = `ws://127.0.0.1:${lua}/ws`;
const loops = Array.from({ length: LOOPS }, async () => {
  while (running) {
    const ok = await new Promise<boolean>((resolve) => {
      const ws = new WebSocket(url);
      ws.onopen = () => {
        ws.close();
        resolve(true);
      };
      ws.onerror = (e) => {
        errors.add((e as ErrorEvent).message ?? "error");
        resolve(false);
      };
    });
    (ok ? done : failed).push(performance.now());
  }
});

const count = (xs: number[], from: number, to: number) => xs.filter((t) => t >= from && t < to).length;
const rounds: { steady: number; handover: number; window_s: number; failed: number }[] = [];
await Bun.sleep(1000); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  await Bun.sleep(SECONDS * 1000);
  const before = pid();
  const t0 = performance.now();
  process.kill(before, "SIGUSR2");
  while (pid() === before) {
    if (performance.now() - t0 > 60_000) throw new Error("no successor within 60s");
    await Bun.sleep(10);
  }
  const t1 = performance.now() + 1000;
  await Bun.sleep(1000);
  rounds.push({
    steady: Math.round(count(done, t0 - SECONDS * 1000, t0) / SECONDS),
    handover: Math.round(count(done, t0, t1) / ((t1 - t0) / 1000)),
    window_s: Math.round((t1 - t0) / 100) / 10,
    failed: count(failed, t0 - SECONDS * 1000, t1),
  });
}
running = false;
await Promise.all(loops);
const steady = median(rounds.map((r) => r.steady));
const handover = median(rounds.map((r) => r.handover));
console.log(JSON.stringify({ bench: "handover-accept", cpus: CPUS, loops: LOOPS, rounds, steady_per_s: steady, handover_per_s: handover, ratio: Math.round((handover / steady) * 100) / 100, failed: rounds.reduce((n, r) => n + r.failed, 0), errors: [...errors] }));
process.kill(pid(), "SIGTERM");
first.kill("SIGTERM");
await Bun.sleep(1500);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
