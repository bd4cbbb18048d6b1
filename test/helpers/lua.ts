// Builds real Lua VMs from source text for tests, with a test family that records values and offers a
// test-only blocking op (`sleep_ms`) and a raw event kind (100) delivered to the global `on_event`.
import { join } from "node:path";
import { LuaVM, type VMOptions } from "../../src/lua/vm";
import type { LuaFamily } from "../../src/lua/family";
import { logging } from "../../src/engine/mix/log";
import { toString } from "../../src/lua/stack";
import { writeTree } from "./files.ts";

export const TEST_EVENT = 100;
export const recorded: string[] = [];

export const testFamily: LuaFamily = {
  name: "test",
  lua: `
    local F = ...
    local host, block, H = F.host, F.block, F.H
    function record(v) host.record(tostring(v)) end
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

export function makeVM(entrySource: string, opts: Partial<VMOptions<unknown>> = {}, extraFiles: Record<string, string> = {}): LuaVM {
  const dir = writeTree({ "entry.lua": entrySource, ...extraFiles });
  return new LuaVM({ entry: join(dir, "entry.lua"), families: [logging, testFamily], host: undefined, ...opts });
}

export const owner = () => ({ busy: false, backlog: null as (() => void)[] | null, backlogBytes: 0 });
