// Shared by the benchmark scripts: command-line numbers, starting connmix and the raw-Bun reference
// server (raw-bun-echo.ts), the load generator (wsload.ts) and publisher (publisher.ts) of this folder,
// and medians. Results are ratios measured in one run.
import { spawn, type Subprocess } from "bun";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitForPort } from "../test/helpers/ports.ts";
import { ROOT } from "../test/helpers/process.ts";

/** This folder: the load generator, publisher and raw-Bun server live beside the benchmarks. */
const BENCH = import.meta.dir;
export const BUN = process.execPath;

/** The number after `--<name>` on the command line, or `d`. */
export function arg(name: string, d: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
}

/** The CPUs (taskset's list) the load generator runs on: `--pin LIST` ("" = not pinned), else the machine's last CPU. */
export function loadPin(): string | undefined {
  return process.argv.includes("--pin") ? option("pin") || undefined : String(availableParallelism() - 1);
}

/**
 * How wsload waits for replies (its --wait): sleep, unless `--wait spin` (only on a quiet machine where the load
 * generator has a CPU of its own; see wsload.ts).
 */
export function loadWait(): string {
  return option("wait") ?? "sleep";
}

/** The text after `--name` on the command line, or undefined. */
export function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in these

/**
 * CPU seconds used so far by `pid` and its children (a primary's workers). Messages per CPU-second of the
 * server are steadier than messages per second when other processes share the machine.
 */
export function cpuSeconds(pid: number): number {
  const own = (p: number) => {
    const fields = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS; // utime, stime
  };
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  return children.reduce((sum, c) => sum + own(c), own(pid));
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The medians of alternating rounds, per server (`results`: msg/s; `perCpu`: per server CPU-second), and each
 * server's ratios to "raw" ("connmix" as ratio and cpu_ratio, others prefixed with their name).
 */
export function ratios(names: string[], results: Record<string, number[]>, perCpu: Record<string, number[]>): Record<string, number> {
  const out: Record<string, number> = {};
  const ratio = (a: number, b: number) => Number((a / b).toFixed(3));
  for (const name of names) {
    out[`${name}_msgs_per_s`] = median(results[name]!);
    out[`${name}_msgs_per_cpu_s`] = median(perCpu[name]!);
    if (name === "raw") continue;
    const prefix = name === "connmix" ? "" : `${name}_`;
    out[`${prefix}ratio`] = ratio(median(results[name]!), median(results.raw!));
    out[`${prefix}cpu_ratio`] = ratio(median(perCpu[name]!), median(perCpu.raw!));
  }
  return out;
}

/** A temp dir for configs, entry scripts and logs. */
export const benchDir = (name = "bench") => mkdtempSync(join(tmpdir(), `connmix-${name}-`));

/**
 * Writes `<dir>/<name>.yaml` (a warn-level log in `dir`, then `yaml`) and starts `connmix <mode>` on `cpus` CPUs,
 * from the checkout at `root` (this one unless a benchmark compares with another).
 */
export function runConnmix(dir: string, name: string, mode: string, yaml: string, cpus = 1, root = ROOT): Subprocess {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `logging: { filename: ${dir}/${name}.log, level: warn }\n${yaml}`);
  return spawn([BUN, join(root, "src/main.ts"), mode, "-f", file, "-p", String(cpus)], { cwd: dir, stdout: "ignore", stderr: "inherit" });
}

/** Starts `connmix single` with one websocket (or socket) server running `entry` (Lua source); returns its ports. */
export async function startConnmix(entry: string, extraYaml = "", luaBind = "127.0.0.1", cpus = 1, root = ROOT, protocol = "websocket") {
  const dir = benchDir();
  const [lua, api, registry, center, mesh] = [freePort(), freePort(), freePort(), freePort(), freePort()];
  writeFileSync(join(dir, "entry.lua"), entry);
  // The shipped entries require utils.prettyprint and protocols.* beside them, as in a release.
  for (const folder of ["utils", "protocols"]) cpSync(join(ROOT, "lua", folder), join(dir, folder), { recursive: true });
  const proc = runConnmix(dir, "connmix", "single", `
center: { registry: { port: ${registry}, bind: 127.0.0.1 }, apiServer: { port: ${center}, bind: 127.0.0.1 } }
engine:
  centerRegistry: 127.0.0.1:${registry}
  meshPoint: { port: ${mesh}, bind: 127.0.0.1 }
  apiServer: { port: ${api}, bind: 127.0.0.1 }
  servers:
    - { port: ${lua}, bind: ${luaBind}, protocol: ${protocol}, options: [{ name: path, value: /chat }], entry: ${dir}/entry.lua, byteCodeExpires: 0 }
${extraYaml}`, cpus, root);
  await waitForPort(lua, 15_000);
  return { proc, lua, api, url: `ws://127.0.0.1:${lua}/chat` };
}

/** Starts raw-bun-echo.ts (or another server of this folder that takes PORT, and `env`), the ceiling for this stack. */
export async function startRawBun(script = "raw-bun-echo.ts", env: Record<string, string> = {}) {
  const port = freePort();
  const proc = spawn([BUN, join(BENCH, script)], { env: { ...process.env, ...env, PORT: String(port) }, stdout: "ignore", stderr: "inherit" });
  await waitForPort(port, 15_000);
  return { proc, port, url: `ws://127.0.0.1:${port}/` };
}

/** Runs wsload.ts (or another load generator of this folder) on the CPUs `pin` lists (taskset), when given,
 * and returns its JSON line. */
export async function wsload(args: string[], pin?: string, script = "wsload.ts"): Promise<Record<string, number | string | boolean>> {
  const p = spawn([...(pin ? ["taskset", "-c", pin] : []), BUN, join(BENCH, script), ...args], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(p.stdout).text();
  await p.exited;
  return JSON.parse(out.trim().split("\n").pop()!);
}

export interface Fanout {
  /** Where the subscribers connect, how many, and the frame each sends to subscribe. */
  url: string;
  conns: number;
  hello: string;
  /** publisher.ts POSTs `body` to `publishUrl` `messages` times, 4 in flight. */
  publishUrl: string;
  body: string;
  messages: number;
}

/** Subscribes `conns` wsload clients, then publishes; returns deliveries per second. */
export async function fanout(f: Fanout): Promise<number> {
  const load = spawn([BUN, join(BENCH, "wsload.ts"), "fanout", f.url, "--conns", String(f.conns), "--expect", String(f.messages), "--hello", f.hello], {
    stdout: "pipe",
    stderr: "pipe",
  });
  // wsload prints {"ready":N,"failed":F} on stderr once every client is subscribed.
  const reader = load.stderr.getReader();
  let err = "";
  while (!err.includes('"ready"')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`wsload ended early: ${err}`);
    err += new TextDecoder().decode(value);
  }
  const ready = JSON.parse(err.slice(err.indexOf("{")).split("\n")[0]!);
  if (ready.ready !== f.conns) throw new Error(`only ${ready.ready} of ${f.conns} clients subscribed`);
  const pub = spawn([BUN, join(BENCH, "publisher.ts"), f.publishUrl, f.body, "4", String(f.messages)], { stdout: "pipe", stderr: "inherit" });
  const [out, pubOut] = await Promise.all([new Response(load.stdout).text(), new Response(pub.stdout).text()]);
  const result = JSON.parse(out.trim().split("\n").pop()!);
  if (!result.complete || JSON.parse(pubOut.trim()).errors) throw new Error(`incomplete run: ${out} ${pubOut}`);
  return result.deliveries_per_s;
}

/** Opens a WebSocket (text messages to `onMessage`) and waits for it to be open. */
export function open(url: string, onMessage?: (data: string) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`cannot open ${url}`));
    if (onMessage) ws.onmessage = (e) => onMessage(String(e.data));
  });
}

export function stop(...procs: Subprocess[]): void {
  for (const p of procs) p.kill("SIGTERM");
}
