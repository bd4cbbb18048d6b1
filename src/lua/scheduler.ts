// Runs callbacks in pooled Lua coroutines, one at a time per connection, in arrival order.
//
// A callback is a start of an idle coroutine's worker with (kind, id, payload, extra). It ends in one of three ways:
//  - the worker returns: done, the coroutine goes back to the pool and the connection's next event runs;
//  - it yields an op name (prelude `block`): a blocking op starts, and its results resume the coroutine later;
//    meanwhile the connection's later events wait in its backlog and other connections run;
//  - it fails: the error and traceback are logged, the dead coroutine is dropped, the connection goes on.
import { lua, type LuaState, LUA_REGISTRYINDEX, LUA_OK, LUA_YIELD, LUA_TSTRING, LUA_ERRMEM } from "../../native/lua";
import { log } from "../log/logger";
import { pushBytes, pushString, pushValue, readValue, stageBytes, stagePayload, toString, type PlainValue } from "./stack";
import type { LuaVM } from "./vm";
import { FAILED } from "./family";
import {
  EVENT_REPLY, EVENT_TEXT, KEPT_REPLY, STATUS_MASK, dispatchEvent, guardedResume, resumeSameSlice, runtimeResume,
} from "../../native/runtime";

/** Whatever serializes callbacks: usually a connection. */
export interface SerialOwner {
  /** Handed to the FAILED hook when a callback of another owner that interrupted this one's failed. */
  id?: number;
  busy: boolean;
  backlog: (() => void)[] | null;
  /** What the backlog costs: its payload bytes plus BACKLOG_EVENT_COST per event (start at 0). */
  backlogBytes: number;
  /** Called after each of its callbacks finishes (or fails). */
  settled?: () => void;
  /**
   * True while a send to it succeeds at once (open, nothing backed up): its events' first reply may then be
   * kept in C and delivered after the slice (LuaFamily.reply), one call into JS fewer.
   */
  readonly replies?: boolean;
  /**
   * Called once when its backlog passes MAX_BACKLOG_BYTES or MAX_BACKLOG_EVENTS (a client that keeps sending
   * while its callback waits): the owner should close. Further payloads are not queued (counted in `dropped`); events without one
   * (close) still are.
   */
  overflow?: () => void;
}

/** What the runaway guard's error says (native/runtime.c), to count callback timeouts. */
const RUNAWAY_MESSAGE = "callback exceeded its time budget";

/** What may wait behind a busy callback of one owner: payload bytes plus BACKLOG_EVENT_COST per event. */
export const MAX_BACKLOG_BYTES = 4 << 20;
/** What one waiting event costs beyond its payload (its closure and arguments), empty frames included. */
export const BACKLOG_EVENT_COST = 64;
/** Events that may wait behind a busy callback of one owner, whatever their size. */
export const MAX_BACKLOG_EVENTS = 16384;

export interface Task {
  /** A coroutine whose stack holds only its worker function (index 1) between events. */
  co: LuaState;
  ref: number;
  owner: SerialOwner;
}

type Payload = string | Uint8Array | PlainValue | undefined;

/** Coroutines kept for reuse; past this, finished ones are released to the GC. */
const POOL_LIMIT = 1024;

export class Scheduler {
  private readonly idle: Task[] = [];
  /** The task whose coroutine is executing right now (null between callbacks). */
  running: Task | null = null;
  /** Callbacks that failed (timeouts included), and those the runaway guard aborted; for metrics. */
  errors = 0;
  timeouts = 0;
  /** Payloads refused because their owner's backlog was full (overflow); for metrics. */
  dropped = 0;

  /** workerRef, adoptRef: the prelude's worker and adopt functions (registry references). */
  constructor(private readonly vm: LuaVM, private readonly workerRef: number, private readonly adoptRef: number) {}

  /**
   * Delivers event `kind` to Lua handler H[kind](id, payload, extra) for `owner`, now if the owner is idle,
   * else after the owner's earlier events. `payload` strings go as UTF-8, Uint8Arrays as raw bytes, other
   * values as tables. The runtime gives kind, payload and extra no meaning: whoever defines the handlers fixes
   * them per kind (the engine: LuaEvents in its contract.ts).
   */
  dispatch(owner: SerialOwner, kind: number, id: number, payload?: Payload, extra?: string | number): void {
    if (this.vm.closed) return;
    if (owner.busy || owner.backlog?.length) this.enqueue(owner, kind, id, payload, extra);
    else this.start(owner, kind, id, payload, extra);
  }

  private enqueue(owner: SerialOwner, kind: number, id: number, payload: Payload, extra: string | number | undefined): void {
    // An event without a payload (close) is always queued: the owner's last callback must run.
    const size = payload === undefined || payload === null
      ? 0
      : BACKLOG_EVENT_COST + (typeof payload === "string" || payload instanceof Uint8Array ? payload.length : 64);
    const queued = owner.backlogBytes;
    if (size > 0 && (queued + size > MAX_BACKLOG_BYTES || (owner.backlog?.length ?? 0) >= MAX_BACKLOG_EVENTS)) {
      if (queued <= MAX_BACKLOG_BYTES) owner.overflow?.();
      owner.backlogBytes = MAX_BACKLOG_BYTES + 1; // overflowed: later payloads are dropped too
      this.dropped++;
      return;
    }
    owner.backlogBytes = queued + size;
    (owner.backlog ??= []).push(() => {
      owner.backlogBytes -= size;
      this.start(owner, kind, id, payload, extra);
    });
  }

  private start(owner: SerialOwner, kind: number, id: number, payload: Payload, extra: string | number | undefined): void {
    owner.busy = true;
    const task = this.take(owner);
    if (typeof extra === "number" && this.startFast(task, kind, id, payload, extra)) return;
    const co = task.co;
    lua.lua_rawgeti(co, LUA_REGISTRYINDEX, this.workerRef);
    lua.lua_pushnumber(co, kind);
    lua.lua_pushnumber(co, id);
    if (payload === undefined || payload === null) lua.lua_pushnil(co);
    else if (typeof payload === "string") pushString(co, payload);
    else if (payload instanceof Uint8Array) pushBytes(co, payload);
    else pushValue(co, payload);
    if (extra === undefined) lua.lua_pushnil(co);
    else if (typeof extra === "number") lua.lua_pushnumber(co, extra);
    else pushString(co, extra);
    this.resume(task, 4);
  }

  /**
   * The common case (frames): the payload is staged in the scratch area and pushing the arguments and resuming
   * is a single FFI call. False (nothing done) for payloads it does not take: tables, and too long ones.
   */
  private startFast(task: Task, kind: number, id: number, payload: Payload, extra: number): boolean {
    let length = -1;
    let flags = kind;
    if (typeof payload === "string") {
      length = stagePayload(payload);
      if (length < 0) return false;
      flags |= EVENT_TEXT;
    } else if (payload instanceof Uint8Array) {
      length = stageBytes(payload);
      if (length < 0) return false;
    } else if (payload !== undefined) {
      return false;
    }
    if (task.owner.replies) flags |= EVENT_REPLY;
    const outer = this.running;
    this.running = task;
    const previous = this.vm.enter();
    const status = dispatchEvent(task.co, flags, id, length, extra);
    if (status & KEPT_REPLY) this.vm.deliverKept(id, status);
    this.vm.leave(previous);
    this.running = outer;
    this.settle(task, status & STATUS_MASK);
    return true;
  }

  private take(owner: SerialOwner): Task {
    const task = this.idle.pop();
    if (task) {
      task.owner = owner;
      return task;
    }
    const L = this.vm.L;
    const co = lua.lua_newthread(L)!; // never NULL: out of memory raises a Lua error instead
    const ref = lua.luaL_ref(L, LUA_REGISTRYINDEX);
    // Index 1 keeps the worker, which each event starts a copy of; adopt runs once, at index 2, and leaves nothing.
    lua.lua_rawgeti(co, LUA_REGISTRYINDEX, this.workerRef);
    lua.lua_rawgeti(co, LUA_REGISTRYINDEX, this.adoptRef);
    runtimeResume(co, 0);
    return { co, ref, owner };
  }

  private resume(task: Task, nargs: number): void {
    const outer = this.running;
    this.running = task;
    const previous = this.vm.enter();
    const status = guardedResume(task.co, nargs);
    this.vm.leave(previous);
    this.running = outer;
    this.settle(task, status);
  }

  /** Acts on how a resume ended: done, waiting on a blocking op, or failed. */
  private settle(task: Task, status: number): void {
    while (status === LUA_YIELD) {
      if (this.block(task, lua.lua_gettop(task.co))) return;
      status = this.answerNil(task);
    }
    if (status !== LUA_OK) {
      this.errors++;
      let text = this.vm.traceback(task.co, task.ref);
      if (status === LUA_ERRMEM) text = text.replace(/\n|$/, ` (this Lua state reached its memoryLimit of ${this.vm.memoryLimit} bytes)$&`);
      if (text.includes(RUNAWAY_MESSAGE)) this.timeouts++;
      log.error("lua callback error: " + text);
      this.restoreConn();
      this.finish(task, false);
      // What the failed callback allocated is garbage now; without a collection the state stays at its limit.
      if (status === LUA_ERRMEM) this.vm.collectGarbage();
    } else {
      this.finish(task, true);
    }
  }

  /** After a failure, points the Lua side's current connection back at the interrupted callback's, if any. */
  private restoreConn(): void {
    // A VM without the connection family (tests of the scheduler alone) has nothing to restore.
    if (!this.vm.hasHook(FAILED)) return;
    try {
      this.vm.call(FAILED, this.running?.owner.id ?? null);
    } catch (e) {
      log.error(`lua: restoring the interrupted callback's connection failed: ${(e as Error).message}`);
    }
  }

  /**
   * Something other than our `block` yielded (a script's own coroutine.yield): it gets nil back at once. In a
   * loop (not recursion) and within the same slice of the runaway guard, so a yield loop is stopped like any
   * other runaway instead of overflowing the JS stack.
   */
  private answerNil(task: Task): number {
    const outer = this.running;
    this.running = task;
    const previous = this.vm.enter();
    const status = resumeSameSlice(task.co, 0);
    this.vm.leave(previous);
    this.running = outer;
    return status;
  }

  /** Starts the blocking op the coroutine yielded; false (stack cleared) when it yielded no op of ours. */
  private block(task: Task, top: number): boolean {
    const co = task.co;
    const name = top > 0 && lua.lua_type(co, 1) === LUA_TSTRING ? toString(co, 1) : null;
    const entry = name === null ? undefined : this.vm.blocking.get(name);
    if (!entry) {
      lua.lua_settop(co, 0);
      return false;
    }
    const args: PlainValue[] = [];
    for (let i = 2; i <= top; i++) args.push(readValue(co, i, entry.binary));
    lua.lua_settop(co, 0);
    let promise: Promise<unknown[]>;
    try {
      promise = entry.run(args, task);
    } catch (e) {
      promise = Promise.resolve([null, (e as Error).message]);
    }
    promise.then(
      (results) => this.continueWith(task, results),
      (e) => this.continueWith(task, [null, e instanceof Error ? e.message : String(e)]),
    );
    return true;
  }

  private continueWith(task: Task, results: unknown[]): void {
    if (this.vm.closed) return;
    const co = task.co;
    try {
      for (const r of results) pushValue(co, r);
    } catch (e) {
      lua.lua_settop(co, 0);
      results = [null, (e as Error).message];
      for (const r of results) pushValue(co, r);
    }
    this.resume(task, results.length);
  }

  private finish(task: Task, reusable: boolean): void {
    const owner = task.owner;
    if (reusable && this.idle.length < POOL_LIMIT) this.idle.push(task);
    else lua.luaL_unref(this.vm.L, LUA_REGISTRYINDEX, task.ref);
    owner.busy = false;
    owner.settled?.();
    // Drain the backlog from a microtask, not recursively: a long backlog must not grow the JS stack.
    if (owner.backlog?.length) queueMicrotask(() => this.drain(owner));
  }

  private drain(owner: SerialOwner): void {
    if (owner.busy) return;
    const next = owner.backlog?.shift();
    if (next) next();
  }

  /** Number of coroutines currently waiting on a blocking op or in the pool; for tests. */
  get pooled(): number {
    return this.idle.length;
  }
}
