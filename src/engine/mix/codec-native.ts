// What the codec family's JS functions share: Lua type names, and `nil, err` results instead of exceptions.
import { lua, type LuaState } from "../../../native/lua";
import type { LuaFunction } from "../../lua/family";
import { pushString } from "../../lua/stack";

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
