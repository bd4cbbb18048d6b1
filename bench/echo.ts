// Echo throughput: connmix (entry: on_message -> conn:send(msg.data)) against the raw-Bun server, measured
// alternately in the same run. Prints each run and the ratio of medians.
//   bun bench/echo.ts [--rounds 3] [--seconds 5] [--conns 100] [--window 16] [--cpus 1] [--pin 1]
// --cpus is connmix's -p (its worker processes); the raw-Bun server is always one process. --pin takes
// taskset's CPU list for the load generator ("" = not pinned); the default is the machine's last CPU.
import { availableParallelism } from "node:os";
import { arg, cpuSeconds, median, startConnmix, startRawBun, stop, wsload } from "./lib";

const [rounds, seconds, conns, window, cpus] = [arg("rounds", 3), arg("seconds", 5), arg("conns", 100), arg("window", 16), arg("cpus", 1)];
const pinAt = process.argv.indexOf("--pin");
const pin = pinAt > 0 ? process.argv[pinAt + 1] || undefined : String(availableParallelism() - 1);
const load = ["--conns", String(conns), "--window", String(window), "--seconds", String(seconds)];

const connmix = await startConnmix("function on_message(msg, conn) conn:send(msg.data) end\n", "", "127.0.0.1", cpus);
const raw = await startRawBun();
const results = { raw: [] as number[], connmix: [] as number[] };
// Messages per CPU-second the server used over the whole wsload run (steadier on a shared machine).
const perCpu = { raw: [] as number[], connmix: [] as number[] };
async function measure(name: "raw" | "connmix", server: { proc: { pid: number }; url: string }): Promise<void> {
  const cpu0 = cpuSeconds(server.proc.pid);
  const msgs = (await wsload(["echo", server.url, ...load], pin)).msgs_per_s as number;
  results[name].push(msgs);
  perCpu[name].push(Math.round((msgs * seconds) / (cpuSeconds(server.proc.pid) - cpu0)));
}
try {
  for (let round = 0; round < rounds; round++) {
    await measure("raw", raw);
    await measure("connmix", connmix);
    console.error(`round ${round + 1}: raw ${results.raw.at(-1)} msg/s (${perCpu.raw.at(-1)} per CPU-s), connmix ${results.connmix.at(-1)} msg/s (${perCpu.connmix.at(-1)} per CPU-s)`);
  }
} finally {
  stop(connmix.proc, raw.proc);
}
const r = median(results.raw), c = median(results.connmix);
console.log(JSON.stringify({
  bench: "echo", conns, window, connmix_cpus: cpus, load_pinned_to: pin ?? null, raw_msgs_per_s: r, connmix_msgs_per_s: c, ratio: Number((c / r).toFixed(3)),
  raw_msgs_per_cpu_s: median(perCpu.raw), connmix_msgs_per_cpu_s: median(perCpu.connmix), cpu_ratio: Number((median(perCpu.connmix) / median(perCpu.raw)).toFixed(3)),
}));
