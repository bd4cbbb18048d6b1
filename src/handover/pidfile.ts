// The pid file `connmix reload` finds a node by: next to the log file, named after it and the mode
// (logs/connmix.engine.pid with the shipped config's logs/connmix.log), so a center and an engine started
// from the same file on one host each have theirs, and nodes with their own log files have their own. A node writes it once it serves (a successor: once it took
// over) and removes it at exit if it still names this process.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import type { Config, Mode } from "../config/schema";

export function pidFilePath(config: Config, mode: Mode): string {
  const log = resolve(config.logging.filename);
  return join(dirname(log), `${basename(log, extname(log))}.${mode}.pid`);
}

/** The pid the file names; null when there is no file or no number in it. */
export function readPid(path: string): number | null {
  if (!existsSync(path)) return null;
  const pid = Number(readFileSync(path, "utf8").trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** True while process `pid` exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Writes this process's pid (atomically: a reader never sees half a file) and removes it at exit. */
export function writePidFile(path: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${process.pid}\n`);
  renameSync(tmp, path);
  process.once("exit", () => {
    if (readPid(path) === process.pid) rmSync(path, { force: true });
  });
}
