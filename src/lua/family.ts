// The shape of one Lua API family (codec, connection, buffer, mesh, queue, http, redis, ...).
// A family is Lua glue plus the JS functions that glue calls; it is installed into every VM.
import type { LuaState } from "../../native/lua";
import type { PlainValue } from "./stack";
import type { LuaVM } from "./vm";
import type { Task } from "./scheduler";

/** A synchronous JS function callable from the family's Lua as `P.<name>(...)`; returns its result count. */
export type LuaFunction = (L: LuaState, vm: LuaVM) => number;

/**
 * A blocking operation. The family's Lua calls `block("<name>", ...)`, which yields the running callback's
 * coroutine; the handler reads the arguments (already converted) and its promise's values are returned to
 * Lua when it settles. Other connections keep running meanwhile.
 */
export type BlockingOp = (args: PlainValue[], vm: LuaVM, task: Task) => Promise<unknown[]>;

export interface ApiFamily {
  name: string;
  /**
   * Lua source run once per VM with `(P, mix, block, H)`: P holds this family's functions (and those of the
   * families before it), `mix` is the global library table, `block(op, ...)` waits for a blocking op, `H` is
   * the table of event handlers indexed by event kind.
   */
  lua?: string;
  functions?: Record<string, LuaFunction>;
  blocking?: Record<string, BlockingOp>;
  /** Blocking ops whose arguments are raw bytes rather than UTF-8 text. */
  binaryArgs?: boolean;
}
