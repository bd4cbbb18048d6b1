// Line echo over raw TCP: a connmix `socket` server (lua/protocols/text.lua framing, on_message -> text.send)
// against bench/raw-bun-tcp-echo.ts, alternately in the same run. Prints each round and the ratio of medians.
//   bun bench/tcp-echo.ts [--rounds 3] [--seconds 5] [--conns 100] [--window 16] [--cpus 1] [--pin 1] [--baseline DIR]
// --baseline also runs connmix from another checkout (e.g. a commit before a change), in the same rounds.
import type { Subprocess } from "bun";
import { arg, cpuSeconds, loadPin, ratios, option, startConnmix, startRawBun, stop, wsload } from "./lib";

const [rounds, seconds, conns, window, cpus] = [arg("rounds", 3), arg("seconds", 5), arg("conns", 100), arg("window", 16), arg("cpus", 1)];
const pin = loadPin();
const baseline = option("baseline");
const load = ["--conns", String(conns), "--window", String(window), "--seconds", String(seconds)];

const ENTRY = `local text = require("protocols.text")
protocol_input, protocol_decode, protocol_encode = text.input, text.decode, text.encode
function on_message(line, conn) text.send(conn, line) end
`;
type Name = "raw" | "connmix" | "baseline";
type Server = { proc: Subprocess; port: number };
const connmix = async (root?: string): Promise<Server> => {
  const s = await startConnmix(ENTRY, "", "127.0.0.1", cpus, root, "socket");
  return { proc: s.proc, port: s.lua };
};
const servers: [Name, Server][] = [["raw", await startRawBun("raw-bun-tcp-echo.ts")], ["connmix", await connmix()]];
if (baseline) servers.push(["baseline", await connmix(baseline)]);
const results: Record<Name, number[]> = { raw: [], connmix: [], baseline: [] };
const perCpu: Record<Name, number[]> = { raw: [], connmix: [], baseline: [] };
try {
  for (let round = 0; round < rounds; round++) {
    for (const [name, server] of servers) {
      const cpu0 = cpuSeconds(server.proc.pid);
      const msgs = (await wsload([String(server.port), ...load], pin, "tcpload.ts")).msgs_per_s as number;
      results[name].push(msgs);
      perCpu[name].push(Math.round((msgs * seconds) / (cpuSeconds(server.proc.pid) - cpu0)));
    }
    console.error(`round ${round + 1}: ${servers.map(([n]) => `${n} ${results[n].at(-1)} msg/s (${perCpu[n].at(-1)} per CPU-s)`).join(", ")}`);
  }
} finally {
  stop(...servers.map(([, s]) => s.proc));
}
const summary = { bench: "tcp-echo", conns, window, connmix_cpus: cpus, load_pinned_to: pin ?? null };
console.log(JSON.stringify({ ...summary, ...ratios(servers.map(([n]) => n), results, perCpu) }));
