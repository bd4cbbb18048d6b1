// What the codec families need beyond the shared Lua bindings (native/lua.ts): libc's memcpy (to
// copy a Lua string's bytes into a JS buffer, or the reverse, without creating a view per string), and
// growable scratch buffers that Lua copies results out of.
import { dlopen, ptr } from "bun:ffi";
import { lua, type LuaState } from "../../../native/lua";
import type { LuaFunction } from "../../lua/family";
import { pushString } from "../../lua/stack";

export const { memcpy } = dlopen("libc.so.6", { memcpy: { args: ["ptr", "ptr", "usize"], returns: "ptr" } } as const).symbols;

const SCRATCH = 64 * 1024;

/**
 * A reusable byte buffer and its address. Bytes memcpy'd into it are read back in JS only at indexes not
 * read since (the JIT may keep a typed-array value it loaded before an FFI call).
 */
export class Scratch {
  buf = Buffer.allocUnsafeSlow(SCRATCH);
  at = ptr(this.buf);

  /** Makes room for `extra` more bytes after the first `used` (which are kept). */
  reserve(used: number, extra: number): void {
    if (used + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < used + extra) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, used);
    this.buf = next;
    this.at = ptr(next);
  }

  /** Drops a buffer a huge document made grow, so it is not kept for the life of the process. */
  shrink(): void {
    if (this.buf.length > 16 * SCRATCH) {
      this.buf = Buffer.allocUnsafeSlow(SCRATCH);
      this.at = ptr(this.buf);
    }
  }
}

const TYPE_NAMES = ["nil", "boolean", "userdata", "number", "string", "table", "function", "userdata", "thread"];
export const typeName = (type: number) => TYPE_NAMES[type] ?? "no value";

/** Returns `nil, message` from a JS function, dropping whatever it had pushed (arguments after the first too). */
export function fail(L: LuaState, message: string): number {
  lua.lua_settop(L, 1);
  lua.lua_pushnil(L);
  pushString(L, message);
  return 2;
}

/** Wraps a family function so that an unexpected JS exception becomes `nil, err` instead of unwinding into C. */
export function guarded(name: string, fn: LuaFunction): LuaFunction {
  return (L, vm) => {
    try {
      return fn(L, vm);
    } catch (e) {
      return fail(L, `${name}: ${(e as Error).message}`);
    }
  };
}
