// `connmix reload [MODE] -f FILE`: finds the running nodes of that config through their pid files
// (src/handover/pidfile.ts), sends each SIGUSR2 (a handover to a successor, src/handover) and waits for the
// outcome: the pid file naming the successor (success), or the node logging that the reload failed or was
// refused (the log file of the same config).
import { openSync, readSync, closeSync, statSync, existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Config } from "../config/schema";
import { pidFilePath, readPid } from "../handover/pidfile";
import { MODES, type Mode } from "../modes";

/** A little more than a successor may take to serve (src/handover/successor.ts). */
const WAIT_MS = 65_000;
const POLL_MS = 100;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Bytes appended to `file` since `offset`. */
function appended(file: string, offset: number): string {
  if (!existsSync(file)) return "";
  const size = statSync(file).size;
  if (size <= offset) return "";
  const buf = Buffer.alloc(Math.min(size - offset, 1 << 20));
  const fd = openSync(file, "r");
  try {
    readSync(fd, buf, 0, buf.length, offset);
  } finally {
    closeSync(fd);
  }
  return buf.toString();
}

/** Reloads every node of `config` running in `mode` (all modes when null); returns the exit status. */
export async function reload(config: Config, mode: Mode | null): Promise<number> {
  const logFile = resolve(config.logging.filename);
  const targets = (mode ? [mode] : MODES)
    .map((m) => ({ mode: m, path: pidFilePath(config, m), pid: readPid(pidFilePath(config, m)) }))
    .filter((t): t is { mode: Mode; path: string; pid: number } => t.pid !== null && alive(t.pid));
  if (targets.length === 0) {
    const where = (mode ? [mode] : MODES).map((m) => pidFilePath(config, m)).join(", ");
    process.stderr.write(`connmix: no running ${mode ?? "node"} found (no pid file of a live process: ${where})\n`);
    return 1;
  }
  let status = 0;
  for (const t of targets) {
    const from = existsSync(logFile) ? statSync(logFile).size : 0;
    process.kill(t.pid, "SIGUSR2");
    process.stdout.write(`connmix: sent SIGUSR2 to the ${t.mode} (pid ${t.pid})\n`);
    let end = performance.now() + WAIT_MS;
    for (;;) {
      const now = readPid(t.path);
      if (now !== null && now !== t.pid) {
        process.stdout.write(`connmix: ${t.mode} reloaded: pid ${now} serves, pid ${t.pid} drains\n`);
        break;
      }
      const failed = appended(logFile, from).match(/(reload (?:failed|refused)[^\n]*)/);
      if (failed) {
        process.stderr.write(`connmix: ${t.mode} (pid ${t.pid}): ${failed[1]}\n`);
        status = 1;
        break;
      }
      // Gone without a successor in its pid file: give the file a moment, it may just be being written.
      if (!alive(t.pid)) end = Math.min(end, performance.now() + 2000);
      if (performance.now() > end) {
        process.stderr.write(`connmix: ${t.mode} (pid ${t.pid}) did not hand over within ${WAIT_MS / 1000}s; see ${logFile}\n`);
        status = 1;
        break;
      }
      await Bun.sleep(POLL_MS);
    }
  }
  return status;
}
