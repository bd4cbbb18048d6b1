// Process-wide logger. Line format (tab-separated, local time):
//   2026-11-25 13:04:05.123456	INFO	engine/server.ts:41	message
// Lines go to stdout and to a daily-rotated file, buffered and flushed every FLUSH_MS,
// on flush(), and on process exit.
import { writeSync } from "node:fs";
import type { LogLevel } from "../config/schema.ts";
import { DailyFile, localDay } from "./rotate.ts";

export type { LogLevel };

export interface LogOptions {
  filename?: string; // "" closes the file; relative to the working directory
  maxFiles?: number; // rotated files kept; 0 keeps all
  level?: LogLevel;
  stdout?: boolean; // default true
  fd?: number; // where the "stdout" copy goes; default 1 (a worker of a multi-core engine writes to 2, its primary logs it)
  clock?: () => number; // epoch milliseconds with a fraction; tests inject one, systemClock restores
  tap?: ((lines: string) => void) | null; // also hands every line to this (connmix test, the console's recent log)
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const NAMES = ["DEBUG", "INFO", "WARN", "ERROR"];
const FLUSH_MS = 100;
const FLUSH_BYTES = 64 * 1024;

let min = 0;
let toStdout = true;
let outFd = 1;
let file: DailyFile | null = null;
let pending = "";
let timer: ReturnType<typeof setTimeout> | null = null;
let tap: ((lines: string) => void) | null = null;

// Wall clock with microseconds: performance.now() anchored to Date.now(). The first anchor waits
// for a millisecond tick (at most 1 ms, once) so it is exact; after a clock step or drift beyond
// a millisecond it is re-anchored to the middle of the current millisecond.
let anchor = (() => {
  const start = Date.now();
  let wall = start;
  while (wall === start) wall = Date.now();
  return wall - performance.now();
})();
export function systemClock(): number {
  const t = anchor + performance.now();
  const wall = Date.now();
  if (t > wall - 1 && t < wall + 2) return t;
  anchor = wall + 0.5 - performance.now();
  return wall + 0.5;
}
let clock = systemClock;

// "YYYY-MM-DD HH:MM:SS" and the day, recomputed once per second.
let cachedSec = -1;
let cachedPrefix = "";
let cachedDay = "";
function recache(sec: number): void {
  const d = new Date(sec * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  cachedDay = localDay(sec * 1000);
  cachedPrefix = `${cachedDay} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  cachedSec = sec;
}

const holder: { stack?: string } = {};

// `dir/file.ts:line` of whoever called `fn`. Wrappers around the logger pass themselves:
//   log.write("info", msg, callerOf(myWrapper))
export function callerOf(fn: Function): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 1;
  Error.captureStackTrace(holder, fn);
  Error.stackTraceLimit = limit;
  const frame = holder.stack?.split("\n")[1];
  const m = frame ? /([^\s(]+):(\d+):\d+\)?\s*$/.exec(frame) : null;
  if (!m) return "?";
  // Compiled binaries report /$bunfs/root/<path> (or B:/~BUN/root/ on Windows).
  const path = m[1]!.replace(/\\/g, "/").replace(/^.*\/(\$bunfs|~BUN)\/root\//, "");
  return `${path.split("/").slice(-2).join("/")}:${m[2]}`;
}

function writeStdout(data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(outFd, data, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") return; // closed pipe: drop stdout copy
      Bun.sleepSync(1);
    }
  }
}

function flushNow(): void {
  if (timer) clearTimeout(timer);
  timer = null;
  if (!pending) return;
  const data = Buffer.from(pending);
  pending = "";
  if (toStdout) writeStdout(data);
  file?.write(data);
}

function emit(rank: number, msg: string, caller: string): void {
  const t = clock();
  const sec = Math.floor(t / 1000);
  if (sec !== cachedSec) recache(sec);
  const micros = Math.min(999999, Math.round((t - sec * 1000) * 1000));
  buffer(`${cachedPrefix}.${String(micros).padStart(6, "0")}\t${NAMES[rank]}\t${caller}\t${msg}\n`);
}

function buffer(lines: string): void {
  if (file && cachedDay > file.day) {
    flushNow(); // buffered lines belong to the old day's file
    file.rotate(cachedDay);
  }
  pending += lines;
  tap?.(lines);
  if (pending.length >= FLUSH_BYTES) flushNow();
  else if (!timer) {
    timer = setTimeout(flushNow, FLUSH_MS);
    timer.unref();
  }
}

process.on("exit", flushNow);

// Below-level calls return before any clock, stack or string work.
export const log = {
  debug(msg: string): void {
    if (min > 0) return;
    emit(0, msg, callerOf(log.debug));
  },
  info(msg: string): void {
    if (min > 1) return;
    emit(1, msg, callerOf(log.info));
  },
  warn(msg: string): void {
    if (min > 2) return;
    emit(2, msg, callerOf(log.warn));
  },
  error(msg: string): void {
    emit(3, msg, callerOf(log.error));
  },
  // For callers that know their own location (Lua's mix.log passes "file.lua:line").
  write(level: LogLevel, msg: string, caller?: string): void {
    const rank = RANK[level];
    if (!(rank >= min)) return; // also drops a level name that is not one of ours
    emit(rank, msg, caller ?? callerOf(log.write));
  },
  // Whole lines another process of this node (a worker) wrote, kept as they are (time, level, caller).
  forward(lines: string): void {
    const t = clock();
    const sec = Math.floor(t / 1000);
    if (sec !== cachedSec) recache(sec);
    buffer(lines);
  },
  enabled(level: LogLevel): boolean {
    return RANK[level] >= min;
  },
  setLevel(level: LogLevel): void {
    min = RANK[level];
  },
  // Throws (with the file name and errno code) when the log file cannot be opened.
  configure(opts: LogOptions): void {
    if (opts.clock) {
      clock = opts.clock;
      cachedSec = -1;
    }
    if (opts.level) min = RANK[opts.level];
    if (opts.tap !== undefined) tap = opts.tap;
    if (opts.stdout !== undefined) toStdout = opts.stdout;
    if (opts.fd !== undefined) outFd = opts.fd;
    if (opts.filename === undefined) return;
    flushNow();
    file?.close();
    file = null;
    if (!opts.filename) return;
    try {
      file = new DailyFile(opts.filename, opts.maxFiles ?? 7, localDay(clock()));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      throw new Error(`cannot open log file ${opts.filename} (${code})`);
    }
  },
  flush(): Promise<void> {
    flushNow();
    return Promise.resolve();
  },
};
