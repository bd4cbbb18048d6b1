// Builds real Lua VMs from source text for tests, with a test family that records values and offers a
// test-only blocking op (`sleep_ms`) and a raw event kind (100) delivered to the global `on_event`.
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LuaVM, type VMOptions } from "../../src/lua/vm";
import type { ApiFamily } from "../../src/lua/family";
import { logging } from "../../src/lua/api/log";
import { toString } from "../../src/lua/stack";
import { log } from "../../src/log/logger";

export const TEST_EVENT = 100;
export const recorded: string[] = [];

export const testFamily: ApiFamily = {
  name: "test",
  lua: `
    local P, mix, block, H = ...
    function record(v) P.record(tostring(v)) end
    function sleep_ms(ms, v) return block("test.sleep", ms, v) end
    H[${TEST_EVENT}] = function(id, p, x) on_event(id, p, x) end
  `,
  functions: {
    record(L) {
      recorded.push(toString(L, 1) ?? "");
      return 0;
    },
  },
  blocking: {
    "test.sleep": async ([ms, v]) => {
      await Bun.sleep(ms as number);
      return [v];
    },
  },
};

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "connmix-test-"));
}

/** Writes `files` (path relative to a new temp dir → content) and returns the dir. */
export function writeTree(files: Record<string, string>): string {
  const dir = tempDir();
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    require("node:fs").mkdirSync(require("node:path").dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
  return dir;
}

export function makeVM(entrySource: string, opts: Partial<VMOptions> = {}, extraFiles: Record<string, string> = {}): LuaVM {
  const dir = writeTree({ "entry.lua": entrySource, ...extraFiles });
  return new LuaVM({ entry: join(dir, "entry.lua"), families: [logging, testFamily], ...opts });
}

/** Sends log lines to a temp file (not stdout) and returns a function that reads what was logged. */
export function captureLog(): () => string {
  const file = join(tempDir(), "test.log");
  log.configure({ filename: file, stdout: false, level: "debug", maxFiles: 1 });
  return () => {
    log.flush();
    try { return readFileSync(file, "utf8"); } catch { return ""; }
  };
}

export const owner = () => ({ busy: false, backlog: null as (() => void)[] | null });

export async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(5);
  }
}
