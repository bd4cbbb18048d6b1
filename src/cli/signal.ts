// `connmix reload [MODE] -f FILE` and `connmix drain [MODE] -f FILE`: find the running nodes of that config
// through their pid files (src/handover/pidfile.ts) and signal each. reload: SIGUSR2 (a handover to a
// successor), done when the pid file names the successor. drain: SIGUSR1 (drain, then exit), done when the
// process has exited. Either fails when the node logs that it refused or failed (the config's log file).
import { openSync, readSync, closeSync, statSync, existsSync } from "node:fs";
import { resolve } from "node:path";
import { MODES, type Config, type Mode } from "../config/schema";
import { alive, pidFilePath, readPid } from "../handover/pidfile";

/** A little more than a successor may take to serve (src/handover/successor.ts). */
const RELOAD_MS = 65_000;
/** What a drain may take on top of engine.drainTimeout (closing the last clients, stopping). */
const DRAIN_EXTRA_MS = 15_000;
const POLL_MS = 100;

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

/** Reloads or drains every node of `config` running in `mode` (all modes when null); returns the exit status. */
export async function signalNodes(config: Config, mode: Mode | null, what: "reload" | "drain"): Promise<number> {
  const signal = what === "reload" ? "SIGUSR2" : "SIGUSR1";
  const waitMs = what === "reload" ? RELOAD_MS : config.engine.drainTimeout * 1000 + DRAIN_EXTRA_MS;
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
    process.kill(t.pid, signal);
    process.stdout.write(`connmix: sent ${signal} to the ${t.mode} (pid ${t.pid})\n`);
    let end = performance.now() + waitMs;
    for (;;) {
      const now = readPid(t.path);
      if (what === "reload" && now !== null && now !== t.pid) {
        process.stdout.write(`connmix: ${t.mode} reloaded: pid ${now} serves, pid ${t.pid} drains\n`);
        break;
      }
      if (what === "drain" && !alive(t.pid)) {
        process.stdout.write(`connmix: ${t.mode} (pid ${t.pid}) drained and exited\n`);
        break;
      }
      const failed = appended(logFile, from).match(new RegExp(`(${what} (?:failed|refused)[^\\n]*)`));
      if (failed) {
        process.stderr.write(`connmix: ${t.mode} (pid ${t.pid}): ${failed[1]}\n`);
        status = 1;
        break;
      }
      // Gone without a successor in its pid file: give the file a moment, it may just be being written.
      if (!alive(t.pid)) end = Math.min(end, performance.now() + 2000);
      if (performance.now() > end) {
        const outcome = what === "reload" ? "hand over" : "exit";
        process.stderr.write(`connmix: ${t.mode} (pid ${t.pid}) did not ${outcome} within ${Math.round(waitMs / 1000)}s; see ${logFile}\n`);
        status = 1;
        break;
      }
      await Bun.sleep(POLL_MS);
    }
  }
  return status;
}
