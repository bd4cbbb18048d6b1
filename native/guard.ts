// Loads the runaway guard (guard.c) with bun:ffi's built-in TinyCC. See guard.c for why it is C.
import { cc, toArrayBuffer, type Pointer } from "bun:ffi";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import guardSource from "./guard.c" with { type: "file" };
import { loadLuaLibraries } from "./libs";

loadLuaLibraries(); // luaL_error must already be visible globally when TinyCC links the hook

// TinyCC reads sources from the real filesystem; an embedded (compiled-binary) source is copied out first.
function sourcePath(): string {
  if (!guardSource.startsWith("/$bunfs/")) return guardSource;
  const dir = mkdtempSync(join(tmpdir(), "connmix-guard-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, "guard.c");
  writeFileSync(out, readFileSync(guardSource));
  return out;
}

const { symbols } = cc({
  source: sourcePath(),
  symbols: {
    guard_state: { args: [], returns: "ptr" },
    guard_hook: { args: ["ptr", "ptr"], returns: "void" },
  },
});

/** [0]: slice generation (bump before every resume), [1]: budget in milliseconds (0 disables). */
export const guardState = new Int32Array(toArrayBuffer(symbols.guard_state() as Pointer, 0, 8));
/** The C hook's address, for lua_sethook(L, hook, LUA_MASKCOUNT, count). */
export const guardHook = symbols.guard_hook.ptr as Pointer;
