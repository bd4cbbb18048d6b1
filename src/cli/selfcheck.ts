// A tiny end-to-end check of the native layer, printed by `connmix version`.
//
// It proves, in whatever process runs it (source checkout or compiled binary), that liblua5.1 was found
// and opened (from the system or from the copy embedded in the executable), that LuaBitOp's `bit` module
// loads through package.preload, and that the runaway guard (native/runtime.c, loaded by native/compile.ts)
// links against the Lua library and really stops a runaway loop.
import { ptr, toArrayBuffer } from "bun:ffi";
import { lua, luaopenBit, LUA_GLOBALSINDEX, LUA_MASKCOUNT, LUA_OK, type LuaState } from "../../native/lua";
import { guardHook, guardedPcall, setGuardBudget } from "../../native/runtime";

const CHECK = `return _VERSION .. " bit=" .. require("bit").tohex(255)`;
const RUNAWAY = `while true do end`;

/**
 * Runs `return _VERSION .. " bit=" .. require("bit").tohex(255)` in a fresh Lua state and returns the
 * result (normally `Lua 5.1 bit=000000ff`). Also runs an infinite loop under the guard with a 20 ms
 * budget and expects it to be stopped. Throws with a readable message if any step fails.
 */
export function luaSelfCheck(): string {
  const L = lua.luaL_newstate();
  if (!L) throw new Error("lua self-check: luaL_newstate failed (out of memory?)");
  try {
    lua.luaL_openlibs(L);
    // package.preload.bit = luaopen_bit (from the LuaBitOp library, no file lookup)
    lua.lua_getfield(L, LUA_GLOBALSINDEX, cstr("package"));
    lua.lua_getfield(L, -1, cstr("preload"));
    lua.lua_pushcclosure(L, luaopenBit, 0);
    lua.lua_setfield(L, -2, cstr("bit"));
    lua.lua_settop(L, 0);

    const result = run(L, CHECK, "=selfcheck");
    if (result.status !== LUA_OK) throw new Error(`lua self-check failed: ${result.text}`);

    checkGuard(L);
    return result.text;
  } finally {
    lua.lua_close(L);
  }
}

function checkGuard(L: LuaState): void {
  lua.lua_sethook(L, guardHook, LUA_MASKCOUNT, 1000);
  setGuardBudget(20); // ms; each VM sets its own budget whenever it runs
  try {
    const runaway = run(L, RUNAWAY, "=selfcheck-guard");
    if (runaway.status === LUA_OK || !runaway.text.includes("time budget")) {
      throw new Error(`lua self-check: the runaway guard did not stop a loop (${runaway.text || "no error"})`);
    }
  } finally {
    lua.lua_sethook(L, null, 0, 0);
  }
}

function run(L: LuaState, code: string, name: string): { status: number; text: string } {
  const src = Buffer.from(code);
  let status = lua.luaL_loadbuffer(L, ptr(src), src.length, cstr(name));
  if (status === LUA_OK) status = guardedPcall(L, 0, 1, 0);
  const text = toString(L, -1);
  lua.lua_settop(L, 0);
  return { status, text };
}

function toString(L: LuaState, index: number): string {
  const len = new BigUint64Array(1);
  const p = lua.lua_tolstring(L, index, ptr(len));
  if (!p) return "";
  const n = Number(len[0]);
  if (n === 0) return "";
  return Buffer.from(toArrayBuffer(p, 0, n)).toString("utf8");
}

function cstr(s: string): Buffer {
  return Buffer.from(s + "\0");
}
