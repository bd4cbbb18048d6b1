// Echo throughput: connmix (entry: on_message -> conn:send(msg.data)) against the raw-Bun server, measured
// alternately in the same run. Prints each run and the ratio of medians.
//   bun bench/echo.ts [--rounds 3] [--seconds 5] [--conns 100] [--window 16] [--cpus 1] [--pin 1] [--baseline DIR]
//                     [--wait spin|sleep]
// --cpus is connmix's -p (its worker processes); the raw-Bun server is always one process. --pin takes
// taskset's CPU list for the load generator ("" = not pinned); the default is the machine's last CPU.
// --baseline also runs connmix from another checkout (e.g. a commit before a change), in the same rounds.
// --wait is wsload's: how the load generator waits for replies (sleep, the default, or spin; see wsload.ts).
import type { Subprocess } from "bun";
import { arg, loadPin, loadWait, option, cpuSeconds, ratios, startConnmix, startRawBun, stop, wsload } from "./lib";

const [rounds, seconds, conns, window, cpus] = [arg("rounds", 3), arg("seconds", 5), arg("conns", 100), arg("window", 16), arg("cpus", 1)];
const pin = loadPin();
const baseline = option("baseline");
const wait = loadWait();
const load = ["--conns", String(conns), "--window", String(window), "--seconds", String(seconds), "--wait", wait];

const ENTRY = "function on_message(msg, conn) conn:send(msg.data) end\n";
type Name = "raw" | "connmix" | "baseline";
const servers: [Name, { proc: Subprocess; url: string }][] = [["raw", await startRawBun()], ["connmix", await startConnmix(ENTRY, "", "127.0.0.1", cpus)]];
if (baseline) servers.push(["baseline", await startConnmix(ENTRY, "", "127.0.0.1", cpus, baseline)]);
const results: Record<Name, number[]> = { raw: [], connmix: [], baseline: [] };
// Messages per CPU-second the server used over the whole wsload run (steadier on a shared machine).
const perCpu: Record<Name, number[]> = { raw: [], connmix: [], baseline: [] };
async function measure(name: Name, server: { proc: { pid: number }; url: string }): Promise<void> {
  const cpu0 = cpuSeconds(server.proc.pid);
  const msgs = (await wsload(["echo", server.url, ...load], pin)).msgs_per_s as number;
  results[name].push(msgs);
  perCpu[name].push(Math.round((msgs * seconds) / (cpuSeconds(server.proc.pid) - cpu0)));
}
try {
  for (let round = 0; round < rounds; round++) {
    for (const [name, server] of servers) await measure(name, server);
    console.error(`round ${round + 1}: ${servers.map(([n]) => `${n} ${results[n].at(-1)} msg/s (${perCpu[n].at(-1)} per CPU-s)`).join(", ")}`);
  }
} finally {
  stop(...servers.map(([, s]) => s.proc));
}
const summary = { bench: "echo", conns, window, connmix_cpus: cpus, load_pinned_to: pin ?? null, load_wait: wait };
console.log(JSON.stringify({ ...summary, ...ratios(servers.map(([n]) => n), results, perCpu) }));
