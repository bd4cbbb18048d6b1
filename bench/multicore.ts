// Echo throughput of `connmix single -p 2` against `-p 1` (entry: on_message -> conn:send(msg.data)), measured
// alternately in the same run with the load generator (wsload.ts), optionally pinned to some CPUs with taskset.
// Also reports the CPU time connmix used per run (primary and workers, from /proc), so a result limited by
// the machine (the load generator needs CPU too) can be told apart from one limited by connmix.
//   bun bench/multicore.ts [--rounds 3] [--seconds 5] [--conns 100] [--window 16] [--pin 1]
// --pin takes taskset's CPU list for wsload ("" = not pinned); the default pins it to the machine's last CPU.
import { availableParallelism } from "node:os";
import { arg, loadPin, cpuSeconds, median, startConnmix, wsload } from "./lib";

const pin = loadPin();
const load = ["--conns", String(arg("conns", 100)), "--window", String(arg("window", 16)), "--seconds", String(arg("seconds", 5))];
const ENTRY = "function on_message(msg, conn) conn:send(msg.data) end\n";
/** Waits until a WebSocket echo works (all workers listen, not just the port probe). */
async function echoes(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((done) => {
      const ws = new WebSocket(url);
      ws.onopen = () => ws.send("x");
      ws.onmessage = () => (ws.close(), done(true));
      ws.onerror = () => done(false);
    });
    if (ok) return;
    await Bun.sleep(100);
  }
  throw new Error(`no echo from ${url}`);
}

const one = await startConnmix(ENTRY, "", "127.0.0.1", 1);
const two = await startConnmix(ENTRY, "", "127.0.0.1", 2);
await Promise.all([echoes(one.url), echoes(two.url)]);
type Run = { msgs_per_s: number; connmix_cpus: number };
const runs: Record<"p1" | "p2", Run[]> = { p1: [], p2: [] };
try {
  for (let round = 0; round < arg("rounds", 3); round++) {
    for (const [name, c] of [["p1", one], ["p2", two]] as const) {
      const cpu0 = cpuSeconds(c.proc.pid);
      const t0 = performance.now();
      const r = await wsload(["echo", c.url, ...load], pin);
      const cpus = (cpuSeconds(c.proc.pid) - cpu0) / ((performance.now() - t0) / 1000);
      if (r.failed) throw new Error(`${name}: ${r.failed} connections failed`);
      runs[name].push({ msgs_per_s: r.msgs_per_s as number, connmix_cpus: Number(cpus.toFixed(2)) });
      console.error(`round ${round + 1} ${name}: ${r.msgs_per_s} msg/s, connmix used ${cpus.toFixed(2)} CPUs`);
    }
  }
} finally {
  one.proc.kill("SIGTERM");
  two.proc.kill("SIGTERM");
}
const summary = (rs: Run[]) => ({ msgs_per_s: median(rs.map((r) => r.msgs_per_s)), connmix_cpus: median(rs.map((r) => r.connmix_cpus)) });
const p1 = summary(runs.p1);
const p2 = summary(runs.p2);
console.log(JSON.stringify({
  bench: "multicore-echo",
  device_cpus: availableParallelism(),
  wsload_pinned_to: pin ?? "none",
  conns: arg("conns", 100),
  window: arg("window", 16),
  p1,
  p2,
  ratio: Number((p2.msgs_per_s / p1.msgs_per_s).toFixed(3)),
}));
