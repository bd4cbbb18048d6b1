// bin/test's runner. The suite has two groups: the fast one (everything but SLOW) and the slow one, end-to-end
// tests that build, type-check, drive a browser or reload a loaded cluster, and spend seconds of CPU doing it. Each test file runs in a
// `bun test` process of its own, `jobs` files at a time (most tests wait on sockets and child processes, not on
// the CPU), longest first. A file's output is printed in one block when it ends. The run closes on bun test's own
// summary (" N pass", " M fail", "K expect() calls", "Ran N tests across F files.") summed over all files, on
// stderr as bun test prints it (the banner on stdout, the rest on stderr), so
// whatever reads bun test's output reads ours. The exit status is non-zero when any test or file failed.
//
//   bun test/run.ts [--all | --slow] [-j N]     (bin/test passes its arguments here)
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";
import { claimPortSlices } from "./helpers/ports.ts";

const ROOT = join(import.meta.dir, "..");
const BUN = join(ROOT, "node_modules/.bin/bun");

/** The slow group: run by `bin/test --all` (and so by CI), not by plain `bin/test`. */
const SLOW = [
  "test/binary.test.ts", // bun build of the executable
  "test/typecheck.test.ts", // tsc over the tree
  "test/sdk/node.test.ts", // tsc and Node over the SDK
  "test/deploy/image.test.ts", // the Docker image's file tree, built with the executable
  "test/deploy/nginx.test.ts",
  "test/console/console.test.ts", // Chromium
  "test/examples/chat-room.test.ts", // Chromium
  // Reloads and upgrades of real clusters under load (1000 clients, drainTimeout waited out, 10 s of CPU each).
  "test/handover/reload.test.ts",
  "test/handover/upgrade.test.ts",
  "test/handover/failures.test.ts",
];

/** Files known to take longest, started first so the last ones to end are short (the rest follow by name). */
const LONGEST = [
  // the slow group
  "test/handover/reload.test.ts",
  "test/handover/upgrade.test.ts",
  "test/deploy/image.test.ts",
  "test/binary.test.ts",
  "test/typecheck.test.ts",
  "test/handover/failures.test.ts",
  "test/sdk/node.test.ts",
  "test/console/console.test.ts",
  // the fast group
  "test/cluster/cluster.test.ts",
  "test/api/queue-redis.test.ts",
  "test/compat/hot-config.test.ts",
  "test/multicore/multicore.test.ts",
  "test/cluster/membership.test.ts",
  "test/cli.test.ts",
  "test/examples/examples.test.ts",
  "test/compat/websocket-module.test.ts",
  "test/cluster/protocol.test.ts",
  "test/luatest/connmix-test.test.ts",
  "test/multicore/rebalance.test.ts",
  "test/compat/ids-cluster.test.ts",
  "test/lua/memory.test.ts",
];

/** The slow group's files mostly compute (tsc, bun build, Chromium): more than two at once only slows each down. */
const SLOW_JOBS = 2;

/** A file that runs longer than this is killed and counted as failed (a test itself times out after 30 s). */
const FILE_LIMIT_MS = 10 * 60_000;

interface Result {
  file: string;
  passed: number;
  failed: number;
  expects: number;
  ms: number;
  cpuMs: number;
}

function testFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => relative(ROOT, join(ROOT, dir, f)))
    .sort();
}

function ordered(files: string[]): string[] {
  const rank = (f: string) => (LONGEST.includes(f) ? LONGEST.indexOf(f) : LONGEST.length);
  return [...files].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** The number in bun test's last " N pass", " N fail" or " N expect() calls" line of a file's output. */
function count(out: string, word: "pass" | "fail" | "expect() calls"): number {
  const m = [...out.matchAll(new RegExp(`^ *(\\d+) ${word.replace(/[()]/g, "\\$&")}$`, "gm"))].at(-1);
  return m ? Number(m[1]) : 0;
}

/** The process groups of the bun test processes running now: a signal to this runner is passed on to them. */
const running = new Set<number>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    for (const pgid of running) killGroup(pgid, signal);
    process.exit(130);
  });
}

/** Sends `signal` to process group `pgid`; false when no process of it is left. */
function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Runs one file; `slice` (one file at a time each) is its range of ports (test/helpers/ports.ts), if any. */
async function runFile(file: string, slice: number | undefined): Promise<Result> {
  const start = performance.now();
  // A process group of its own: what the file started and left running (a failed test's servers) is killed with it.
  const proc = Bun.spawn([BUN, "test", "--timeout", "30000", `./${file}`], {
    detached: true,
    cwd: ROOT,
    env: { ...process.env, ...(slice === undefined ? {} : { CONNMIX_TEST_PORT_SLOT: String(slice) }) },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  running.add(proc.pid);
  const killer = setTimeout(() => killGroup(proc.pid, "SIGKILL"), FILE_LIMIT_MS);
  const output = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(killer);
  running.delete(proc.pid);
  // (before reading the output to its end: a leftover that inherited the pipes would hold it open)
  const leftovers = killGroup(proc.pid, "SIGKILL");
  const [stdout, stderr] = await output;
  const ms = performance.now() - start;
  const usage = proc.resourceUsage();
  const cpuMs = usage ? Number(usage.cpuTime.user + usage.cpuTime.system) / 1000 : 0;
  const report = stderr + (leftovers ? "\n(test/run.ts: processes the file left running were killed)" : "");
  const out = stdout + report;
  const passed = count(out, "pass");
  // A file that ends badly without a failed test (a crash, an error outside tests, the time limit) is one failure.
  const failed = Math.max(count(out, "fail"), code === 0 ? 0 : 1);
  const took = `${(ms / 1000).toFixed(1)} s, ${(cpuMs / 1000).toFixed(1)} s CPU`;
  // Where bun test writes: its banner (and the tests' console.log) to stdout, results and summary to stderr.
  process.stdout.write(stdout);
  const heading = `=== ${file} (${passed} passed, ${failed} failed, ${took}${code === 0 ? "" : `, exit ${code ?? proc.signalCode}`})`;
  process.stderr.write(`\n${heading}\n${report.trimEnd()}\n`);
  return { file, passed, failed, expects: count(out, "expect() calls"), ms, cpuMs };
}

async function runAll(files: string[], jobs: number, slices: number[]): Promise<Result[]> {
  const queue = ordered(files);
  const results: Result[] = [];
  const worker = async (slot: number) => {
    for (let f = queue.shift(); f !== undefined; f = queue.shift()) results.push(await runFile(f, slices[slot]));
  };
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, (_, slot) => worker(slot)));
  return results;
}

function parseArgs(argv: string[]): { groups: ("fast" | "slow")[]; jobs: number } {
  let groups: ("fast" | "slow")[] = ["fast"];
  // Most tests wait on sockets and child processes: two files per CPU keep the CPUs busy (measured on 2 CPUs:
  // the fast group in 63 s with 3 at a time, 56 s with 4).
  let jobs = Number(process.env.CONNMIX_TEST_JOBS) || availableParallelism() * 2;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--all") groups = ["fast", "slow"];
    else if (a === "--slow") groups = ["slow"];
    else if (a === "-j" && Number(argv[i + 1]) >= 1) jobs = Number(argv[++i]);
    else {
      console.error(`test/run.ts: unknown argument '${a}' (use --all, --slow, -j N)`);
      process.exit(2);
    }
  }
  return { groups, jobs };
}

const { groups, jobs } = parseArgs(process.argv.slice(2));
const all = testFiles("test");
const missing = SLOW.filter((f) => !all.includes(f));
if (missing.length > 0) throw new Error(`test/run.ts: SLOW names files that do not exist: ${missing.join(", ")}`);
// More jobs than free slices (other checkouts' runs hold some): the rest get ports the OS picks.
const slices = claimPortSlices(jobs);
const started = performance.now();
const results: Result[] = [];
for (const group of groups) {
  const files = all.filter((f) => SLOW.includes(f) === (group === "slow"));
  const n = group === "slow" ? Math.min(jobs, SLOW_JOBS) : jobs;
  console.log(`bin/test: the ${group} group, ${files.length} files, ${n} at a time`);
  results.push(...(await runAll(files, n, slices)));
}
const wall = (performance.now() - started) / 1000;
const cpu = results.reduce((s, r) => s + r.cpuMs, 0) / 1000;
const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 8);
console.error(`\nslowest files: ${slowest.map((r) => `${r.file} ${(r.ms / 1000).toFixed(1)} s`).join(", ")}`);
const failedFiles = results.filter((r) => r.failed > 0).map((r) => r.file);
if (failedFiles.length > 0) console.error(`files with failures: ${failedFiles.join(", ")}`);
console.error(`${results.length} files in ${wall.toFixed(1)} s (${cpu.toFixed(1)} s CPU)`);
const sum = (key: "passed" | "failed" | "expects") => results.reduce((s, r) => s + r[key], 0);
const [passed, failed] = [sum("passed"), sum("failed")];
// bun test's own summary, on stderr where bun test prints it: CI reads it there to know tests ran.
console.error(`\n ${passed} pass\n ${failed} fail\n ${sum("expects")} expect() calls`);
console.error(`Ran ${passed + failed} tests across ${results.length} files. [${wall.toFixed(2)}s]`);
process.exit(failed > 0 ? 1 : 0);
