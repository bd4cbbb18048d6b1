// Echo throughput: connmix (entry: on_message -> conn:send(msg.data)) against the raw-Bun server, measured
// alternately in the same run. Prints each run and the ratio of medians.
//   bun bench/echo.ts [--rounds 3] [--seconds 5] [--conns 100] [--window 16] [--cpus 1]
// --cpus is connmix's -p (its worker processes); the raw-Bun server is always one process.
import { arg, median, startConnmix, startRawBun, stop, wsload } from "./lib";

const [rounds, seconds, conns, window, cpus] = [arg("rounds", 3), arg("seconds", 5), arg("conns", 100), arg("window", 16), arg("cpus", 1)];
const load = ["--conns", String(conns), "--window", String(window), "--seconds", String(seconds)];

const connmix = await startConnmix("function on_message(msg, conn) conn:send(msg.data) end\n", "", "127.0.0.1", cpus);
const raw = await startRawBun();
const results = { raw: [] as number[], connmix: [] as number[] };
try {
  for (let round = 0; round < rounds; round++) {
    results.raw.push((await wsload(["echo", raw.url, ...load])).msgs_per_s as number);
    results.connmix.push((await wsload(["echo", connmix.url, ...load])).msgs_per_s as number);
    console.error(`round ${round + 1}: raw ${results.raw.at(-1)} msg/s, connmix ${results.connmix.at(-1)} msg/s`);
  }
} finally {
  stop(connmix.proc, raw.proc);
}
const r = median(results.raw), c = median(results.connmix);
console.log(JSON.stringify({ bench: "echo", conns, window, connmix_cpus: cpus, raw_msgs_per_s: r, connmix_msgs_per_s: c, ratio: Number((c / r).toFixed(3)) }));
