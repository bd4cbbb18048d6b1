// The shape of one Lua family (codec, connection, mesh, queue, http, redis, ...): Lua glue plus the JS (or C)
// functions that glue calls, installed into every VM. Its declaration says everything the chunk gets, in
// the spirit of lua-resty-core's ffi.cdef: the JS functions it calls (typed by the slice of the VM's host
// they need), the constants it reads, the families whose exports it uses and the hooks it gives back.
import type { Pointer } from "bun:ffi";
import type { LuaState } from "../../native/lua";
import type { PlainValue } from "./stack";
import type { LuaVM } from "./vm";
import type { Task } from "./scheduler";

/** A synchronous JS function the family's Lua calls as `F.host.<name>(...)`; returns its result count. */
export type LuaFunction<H = unknown> = (L: LuaState, vm: LuaVM<H>) => number;

/**
 * A blocking operation. The family's Lua calls `F.block("<name>", ...)`, which yields the running callback's
 * coroutine; the handler reads the arguments (already converted) and its promise's values are returned to
 * Lua when it settles. Other connections keep running meanwhile.
 */
export type BlockingOp<H = unknown> = (args: PlainValue[], vm: LuaVM<H>, task: Task) => Promise<unknown[]>;

/**
 * A Lua function a family's chunk returns for JS to call (`LuaVM.call`), kept by reference: a script that
 * assigns a global of the same name changes nothing. `A` are its arguments; its first result comes back as
 * a PlainValue, which the caller checks.
 */
export interface Hook<A extends unknown[] = unknown[]> {
  readonly name: string;
  /** Its result's strings are read as bytes (Uint8Array), not UTF-8 text. */
  readonly binaryResult: boolean;
  /** Never set: carries A for the type checker. */
  readonly signature?: (...args: A) => void;
}

export function hook<A extends unknown[]>(name: string, binaryResult = false): Hook<A> {
  return { name, binaryResult };
}

/**
 * The one hook the runtime calls itself, if a family returns it: after a callback failed, with the id of
 * the owner of the callback it interrupted (null: none), whose Lua-side state the failed one did not restore.
 */
export const FAILED = hook<[id: number | null]>("failed");

/** Fields of a chunk's argument table that the runtime fills; constants and used families take the others. */
export const CHUNK_FIELDS = ["host", "mix", "block", "H", "S"] as const;

/**
 * One family. Its `lua` chunk runs once per VM with one table `F` holding exactly what this declaration names:
 *   F.host   this family's `functions` and `native` functions (no other family's);
 *   F.mix    the global library table scripts see;
 *   F.block  `block(op, ...)` waits for one of the family's `blocking` ops;
 *   F.H      the event handlers by event number (H[kind] = function(id, payload, extra));
 *   F.S      the running callback's state (S.conn, the connection it serves);
 *   F.<key>  each of `constants`;
 *   F.<name> the exports of each family named in `uses`.
 * It returns its exports (a table or nil, for the families that use it) and a table of its `hooks` by name.
 * The VM installs the families a family uses before it, whatever the order of the list.
 * `H` is the slice of the VM's host the family's JS functions and blocking ops need (`vm.host`).
 */
export interface LuaFamily<H = unknown> {
  name: string;
  lua?: string;
  functions?: Record<string, LuaFunction<H>>;
  /**
   * C functions (lua_CFunction addresses, from native/) the chunk calls as `F.host.<name>`, as it calls
   * `functions`, but without entering JS. Unlike a JS function, one runs with the state's memory limit on:
   * any Lua allocation in it may raise "not enough memory" (a longjmp out of it), so it must hold only
   * Lua-managed memory (or its C stack) and return `nil, err` for bad input rather than raise.
   */
  native?: Record<string, Pointer>;
  blocking?: Record<string, BlockingOp<H>>;
  /** Blocking ops whose arguments are raw bytes rather than UTF-8 text. */
  binaryArgs?: boolean;
  /** Values the chunk reads as `F.<key>` (event numbers and the like, from the contract that owns them). */
  constants?: Record<string, PlainValue>;
  /** Families whose exports the chunk reads as `F.<name>`. */
  uses?: readonly string[];
  /** Lua functions the chunk must return for JS to call. */
  hooks?: readonly Hook<never>[];
  /**
   * The family's send function, `(id, data, type)`, when a send to the connection whose event runs can be kept
   * in C (runtime.c's reply_send) instead of calling `functions[name]`; `deliver` then sends it once the slice
   * returns or before the next JS function runs. Only the scheduler's `replies` owners' events keep sends.
   */
  reply?: { name: string; deliver(vm: LuaVM<H>, id: number, data: string | Uint8Array, type: number): void };
}
