// The process's own metrics, under the names Prometheus' client libraries use (process_*), plus the
// event loop's lag and the JS heap. Read from /proc at scrape time where Linux offers it. A multi-core
// engine's CPU time and resident memory include its workers' (the others describe the primary process).
import { readFileSync, readdirSync } from "node:fs";
import { unlabeled as one, type Registry } from "./registry";

const startTime = Date.now() / 1000 - process.uptime();
const LAG_EVERY_MS = 500;

// Event-loop lag: how late a periodic timer fires. One monitor per process, unref'd so it never keeps
// the process alive.
let lag = 0;
let lagTimer: Timer | undefined;
function watchLag(): void {
  if (lagTimer) return;
  let expected = performance.now() + LAG_EVERY_MS;
  lagTimer = setInterval(() => {
    const now = performance.now();
    lag = Math.max(0, now - expected) / 1000;
    expected = now + LAG_EVERY_MS;
  }, LAG_EVERY_MS);
  lagTimer.unref();
}

function readProc(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function openFds(): number {
  try {
    return readdirSync("/proc/self/fd").length - 1; // minus the directory handle readdir itself holds
  } catch {
    return NaN;
  }
}

function maxFds(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readProc("/proc/self/limits"));
  return m ? Number(m[1]) : NaN;
}

function virtualBytes(): number {
  const m = /^VmSize:\s+(\d+) kB/m.exec(readProc("/proc/self/status"));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU time and memory of other processes that count as this one's: a multi-core engine's workers. */
export interface OtherProcesses {
  cpuSeconds(): number;
  residentBytes(): number;
}
let others: OtherProcesses = { cpuSeconds: () => 0, residentBytes: () => 0 };
export function countOtherProcesses(o: OtherProcesses): void {
  others = o;
}

export function addProcessMetrics(registry: Registry): void {
  watchLag();
  registry.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", [], one(() => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6 + others.cpuSeconds();
  }));
  registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", [], one(() => process.memoryUsage.rss() + others.residentBytes()));
  registry.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", [], one(virtualBytes));
  registry.gauge("process_open_fds", "Number of open file descriptors.", [], one(openFds));
  registry.gauge("process_max_fds", "Maximum number of open file descriptors.", [], one(maxFds));
  registry.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", [], one(() => startTime));
  registry.gauge("bun_event_loop_lag_seconds", "How late the event loop ran a periodic timer, last measurement.", [], one(() => lag));
  registry.gauge("bun_heap_used_bytes", "JavaScript heap in use in bytes.", [], one(() => process.memoryUsage().heapUsed));
}
