// Loads the runaway guard (guard.c) with bun:ffi's built-in TinyCC. See guard.c for why it is C.
import { cc, type Pointer } from "bun:ffi";
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
    guard_budget: { args: ["i32"], returns: "void" },
    guard_resume: { args: ["ptr", "i32"], returns: "i32" },
    guard_pcall: { args: ["ptr", "i32", "i32", "i32"], returns: "i32" },
    guard_hook: { args: ["ptr", "ptr"], returns: "void" },
  },
});

let budget = -1;
/** Sets the budget of the slices that follow, in ms (0 disables); cheap when unchanged. */
export function setGuardBudget(ms: number): void {
  if (ms !== budget) symbols.guard_budget((budget = ms));
}
/** lua_resume and lua_pcall, each starting a new guarded slice. */
export const guardedResume = symbols.guard_resume;
export const guardedPcall = symbols.guard_pcall;
/** The C hook's address, for lua_sethook(L, hook, LUA_MASKCOUNT, count). */
export const guardHook = symbols.guard_hook.ptr as Pointer;
