// One Lua 5.1 state running one server's entry script: creation, API families, entry loading, hot reload,
// and calls that run to completion on the main thread. Callbacks run in coroutines (scheduler.ts).
import { JSCallback, type Pointer } from "bun:ffi";
import { statSync } from "node:fs";
import { dirname } from "node:path";
import {
  lua, luaopenBit, type LuaState, LUA_REGISTRYINDEX, LUA_GLOBALSINDEX, LUA_MASKCOUNT,
} from "../../native/lua";
import {
  guardHook, guardedPcall, keptForJs, keptId, KEPT_BINARY, newLimitedState, setGuardBudget, type LimitedState,
} from "../../native/runtime";
import { log } from "../log/logger";
import { keptReplyData, pushString, pushValue, readValue, toString, type PlainValue } from "./stack";
import { Scheduler, type Task } from "./scheduler";
import type { Hook, LuaFamily, LuaFunction } from "./family";
import { installOrder, keepHooks, pushChunkArgument, type RuntimeRefs } from "./install";
import preludeSource from "./prelude.lua" with { type: "text" };

export interface VMOptions<H> {
  /** Absolute path of the entry script; `require` searches its directory. */
  entry: string;
  /** Families installed before the entry runs (each after the families it uses). */
  families: LuaFamily<H>[];
  /** Longest a callback may run without yielding, in ms; 0 disables the guard. */
  budgetMs?: number;
  /** Seconds between checks for edited Lua files; 0 disables hot reload. */
  reloadSeconds?: number;
  /** Bytes the state may hold (engine.luavm.memoryLimit); 0 or absent: no limit. */
  memoryLimit?: number;
  /** What the families need from their host (the engine server), read back with `vm.host`. */
  host: H;
  /** Called after the entry ran, at start and after each hot reload (the callbacks may have changed). */
  onLoad?: (vm: LuaVM<H>) => void;
}

/** A blocking op as the scheduler runs it: bound to its VM. */
export interface BlockingEntry {
  run: (args: PlainValue[], task: Task) => Promise<unknown[]>;
  binary: boolean;
}

const FORGET_CHANGED = `local files, changed = ...
local set = {}
for _, path in ipairs(changed) do set[path] = true end
for name, path in pairs(files) do if set[path] then package.loaded[name] = nil end end`;

/** Instructions between two runs of the runaway guard's hook: rare enough to cost nothing measurable. */
const GUARD_EVERY = 10_000;
const DEFAULT_BUDGET_MS = 1000;
/** Room a traceback of a callback that ran out of memory may take past the limit. */
const TRACEBACK_RESERVE = 1 << 20;

// JSCallbacks are shared by all VMs: Lua calls them with its lua_State, and `active` says which VM runs.
// A function only ever runs while its own VM is active (a Lua state belongs to one VM), so the host type
// its family declared holds; `any` is where that fact is out of the type checker's sight.
const callbacks = new Map<LuaFunction<never>, JSCallback>();
// eslint-disable-next-line @typescript-eslint/no-explicit-any
let active: LuaVM<any>;

// A JS exception must never unwind into C: bun:ffi would hand Lua a made-up result and rethrow it from the
// FFI call that entered Lua, skipping the scheduler's bookkeeping (the connection stayed busy for good).
// So an exception is logged and the function returns no results (nil to Lua). For the same reason Lua calls
// it through runtime.c's js_call, which turns the memory limit off while it runs.
// A send runtime.c kept (reply_send) is delivered before any JS function runs, so sends keep their order.
function guard<H>(fn: LuaFunction<H>): (L: LuaState) => number {
  return (L) => {
    const kept = keptForJs();
    if (kept) active.deliverKept(keptId(), kept);
    try {
      return fn(L, active);
    } catch (e) {
      log.error(`lua api function failed: ${e instanceof Error ? e.message : String(e)}`);
      return 0;
    }
  };
}

function callbackFor<H>(fn: LuaFunction<H>): Pointer {
  let cb = callbacks.get(fn);
  if (!cb) {
    cb = new JSCallback(guard(fn), { args: ["ptr"], returns: "i32" });
    callbacks.set(fn, cb);
  }
  return cb.ptr!;
}

export class LuaVM<out H = unknown> {
  readonly L: LuaState;
  readonly entry: string;
  readonly host: H;
  readonly scheduler: Scheduler;
  readonly blocking = new Map<string, BlockingEntry>();
  /** Registry refs of the hooks the families returned, by hook name. */
  private readonly hooks = new Map<string, number>();
  private readonly budgetMs: number;
  /** The state's memory accounting, kept by runtime.c's allocator. */
  private readonly memory: LimitedState;
  private tracebackRef = 0;
  private moduleFilesRef = 0;
  private loadedAt = new Map<string, number>();
  private reloadTimer: Timer | undefined;
  /** opts.onLoad bound to this VM. */
  private readonly onLoad: (() => void) | undefined;
  /** Sends a reply runtime.c kept (the family function that keeps them, see LuaFamily.reply). */
  private deliverReply: NonNullable<LuaFamily<H>["reply"]>["deliver"] | undefined;
  closed = false;

  constructor(opts: VMOptions<H>) {
    this.entry = opts.entry;
    this.host = opts.host;
    const onLoad = opts.onLoad;
    this.onLoad = onLoad && (() => onLoad(this));
    this.budgetMs = Math.round(opts.budgetMs ?? DEFAULT_BUDGET_MS);
    const state = newLimitedState(opts.memoryLimit ?? 0);
    if (!state) throw new Error("cannot create a Lua state (out of memory)");
    const L = state.L;
    this.L = L;
    this.memory = state;
    lua.luaL_openlibs(L);
    // Coroutines inherit the hook from the state that creates them, so set it before any exist.
    lua.lua_sethook(L, guardHook, LUA_MASKCOUNT, GUARD_EVERY);

    const refs = this.runChunk(preludeSource, "=connmix.prelude", 8, () => {
      pushString(L, dirname(opts.entry));
      lua.lua_pushcclosure(L, luaopenBit, 0);
      lua.lua_pushnumber(L, opts.memoryLimit ?? 0);
      return 3;
    });
    const [workerRef, adoptRef, tracebackRef, moduleFilesRef, block, handlers, current, mix] = refs;
    this.tracebackRef = tracebackRef;
    this.moduleFilesRef = moduleFilesRef;
    this.scheduler = new Scheduler(this, workerRef, adoptRef);
    this.install(installOrder(opts.families), { block, handlers, state: current, mix });
    for (const ref of [block, handlers, current, mix]) lua.luaL_unref(L, LUA_REGISTRYINDEX, ref);
    this.loadEntry();
    const seconds = opts.reloadSeconds ?? 0;
    if (seconds > 0) this.reloadTimer = setInterval(() => this.reloadIfChanged(), seconds * 1000);
  }

  /**
   * Runs each family's chunk with the table its declaration names (family.ts), keeps the hooks it returns
   * and hands its exports to the families that use it. `runtime` are the prelude's block, H, S and mix.
   */
  private install(families: LuaFamily<H>[], runtime: RuntimeRefs): void {
    const L = this.L;
    const exports = new Map<string, number>();
    const opFamily = new Map<string, string>();
    for (const family of families) {
      for (const [name, op] of Object.entries(family.blocking ?? {})) {
        // Only a family that uses another may replace its op (connmix test's canned http): never by list order.
        const owner = opFamily.get(name);
        if (owner && !family.uses?.includes(owner)) throw new Error(`Lua families ${owner} and ${family.name} both define the blocking op ${name}`);
        opFamily.set(name, family.name);
        this.blocking.set(name, { run: (args, task) => op(args, this, task), binary: family.binaryArgs ?? false });
      }
      if (family.reply) this.deliverReply = family.reply.deliver;
      if (!family.lua) continue;
      const [exportsRef, hooksRef] = this.runChunk(family.lua, `=connmix.${family.name}`, 2, () => {
        pushChunkArgument(L, family, runtime, exports, callbackFor);
        return 1;
      });
      exports.set(family.name, exportsRef);
      keepHooks(L, family, hooksRef, this.hooks);
    }
    for (const ref of exports.values()) lua.luaL_unref(L, LUA_REGISTRYINDEX, ref);
  }

  /** Compiles and runs a chunk on the main thread; returns registry refs to its first `nresults` results. */
  private runChunk(source: string, chunkName: string, nresults: number, pushArgs: () => number): number[] {
    const L = this.L;
    const code = Buffer.from(source);
    if (lua.luaL_loadbuffer(L, code, code.length, Buffer.from(chunkName + "\0")) !== 0) {
      const msg = toString(L, -1);
      lua.lua_settop(L, 0);
      throw new Error(msg ?? "cannot compile " + chunkName);
    }
    const nargs = pushArgs();
    const previous = this.enter();
    const status = guardedPcall(L, nargs, nresults, 0);
    this.leave(previous);
    if (status !== 0) {
      const msg = toString(L, -1);
      lua.lua_settop(L, 0);
      throw new Error(msg ?? "error running " + chunkName);
    }
    const refs: number[] = [];
    for (let i = 0; i < nresults; i++) refs.unshift(lua.luaL_ref(L, LUA_REGISTRYINDEX));
    return refs;
  }

  private loadEntry(): void {
    const source = require("node:fs").readFileSync(this.entry, "utf8") as string;
    this.runChunk(source, "@" + this.entry, 0, () => 0);
    this.loadedAt = this.watchedFiles();
    this.onLoad?.();
  }

  /** Sends the reply runtime.c kept for client `id` (see LuaFamily.reply); `kept` is its KEPT_ bits. */
  deliverKept(id: number, kept: number): void {
    this.deliverReply?.(this, id, keptReplyData(kept), kept & KEPT_BINARY ? 2 : 1);
  }

  /** Marks this VM as the one JS functions act on and applies its runaway budget. */
  enter(): LuaVM<unknown> {
    const previous = active;
    active = this;
    setGuardBudget(this.budgetMs);
    return previous;
  }
  leave(previous: LuaVM<unknown>): void {
    active = previous;
  }

  /** True when a family returned this hook. */
  hasHook(hook: Hook<never>): boolean {
    return this.hooks.has(hook.name);
  }

  /**
   * Calls a hook a family returned, on the main thread, and returns its first result as JS (the caller checks it).
   * For short, non-blocking work (protocol_encode, context updates from the API); a Lua error is thrown.
   */
  call<A extends unknown[]>(hook: Hook<A>, ...args: A): PlainValue {
    const ref = this.hooks.get(hook.name);
    if (ref === undefined) throw new Error(`no Lua family returned the hook ${hook.name}`);
    lua.lua_rawgeti(this.L, LUA_REGISTRYINDEX, ref);
    return this.callTop(args, hook.binaryResult);
  }

  /** Calls global function `name` of the script (tests and benchmarks drive scripts this way). */
  callGlobal(name: string, args: unknown[], binaryResult = false): PlainValue {
    lua.lua_getfield(this.L, LUA_GLOBALSINDEX, Buffer.from(name + "\0"));
    return this.callTop(args, binaryResult);
  }

  /** Calls the function on top of the stack with `args`; returns its first result as JS. */
  private callTop(args: unknown[], binaryResult: boolean): PlainValue {
    const L = this.L;
    const base = lua.lua_gettop(L) - 1;
    try {
      for (const a of args) pushValue(L, a);
    } catch (e) {
      lua.lua_settop(L, base);
      throw e;
    }
    const previous = this.enter();
    const status = guardedPcall(L, args.length, 1, 0);
    this.leave(previous);
    const result = status === 0 ? readValue(L, -1, binaryResult) : null;
    const err = status === 0 ? null : toString(L, -1);
    lua.lua_settop(L, base);
    if (err !== null) throw new Error(err);
    return result;
  }

  /** The traceback of a coroutine that just failed with the message on top of its stack. */
  traceback(co: LuaState, coRef: number): string {
    const L = this.L;
    const base = lua.lua_gettop(L);
    lua.lua_rawgeti(L, LUA_REGISTRYINDEX, this.tracebackRef);
    lua.lua_rawgeti(L, LUA_REGISTRYINDEX, coRef);
    lua.lua_xmove(co, L, 1);
    // An error object's __tostring is Lua code that may call into this VM's API. A callback that ran out of
    // memory left the state at its limit: the traceback gets a little room past it.
    const limit = this.memory.limit();
    if (limit > 0) this.memory.setLimit(limit + TRACEBACK_RESERVE);
    const previous = this.enter();
    const status = guardedPcall(L, 2, 1, 0);
    this.leave(previous);
    if (limit > 0) this.memory.setLimit(limit);
    const text = toString(L, -1) ?? "(no message)";
    lua.lua_settop(L, base);
    return status === 0 ? text : "error while building a traceback: " + text;
  }

  /** Entry plus every module it required, with modification times. */
  private watchedFiles(): Map<string, number> {
    const L = this.L;
    lua.lua_rawgeti(L, LUA_REGISTRYINDEX, this.moduleFilesRef);
    const modules = readValue(L, -1) as Record<string, string> | PlainValue[];
    lua.lua_settop(L, -2);
    const files = new Map<string, number>();
    for (const path of [this.entry, ...Object.values(modules ?? {})]) {
      try { files.set(String(path), statSync(String(path)).mtimeMs); } catch { files.set(String(path), -1); }
    }
    return files;
  }

  /**
   * Hot reload: when the entry or a module it required changed on disk, compile every changed file first
   * (a syntax error is logged and the old code keeps running), then forget the changed modules and run the
   * entry again so new callbacks use the new definitions. Callbacks already running finish on the old code.
   */
  reloadIfChanged(): boolean {
    const now = this.watchedFiles();
    const changed = [...now].filter(([path, mtime]) => this.loadedAt.get(path) !== mtime).map(([p]) => p);
    if (changed.length === 0) return false;
    this.loadedAt = now;
    for (const path of changed) {
      const err = this.compileError(path);
      if (err) {
        log.error(`lua reload skipped, ${err}`);
        return false;
      }
    }
    try {
      // Only the changed modules are forgotten: an unchanged one keeps its state (a protocol module's
      // per-connection state; live connections would otherwise be misframed by a fresh copy).
      this.runChunk(FORGET_CHANGED, "=connmix.reload", 0, () => {
        lua.lua_rawgeti(this.L, LUA_REGISTRYINDEX, this.moduleFilesRef);
        pushValue(this.L, changed);
        return 2;
      });
      this.loadEntry();
      log.info(`lua code reloaded ${this.entry} (${changed.join(", ")})`);
      return true;
    } catch (e) {
      log.error(`lua reload failed: ${(e as Error).message}`);
      return false;
    }
  }

  private compileError(path: string): string | null {
    let source: Buffer;
    try { source = require("node:fs").readFileSync(path); } catch (e) { return `${path}: ${(e as Error).message}`; }
    const L = this.L;
    const status = lua.luaL_loadbuffer(L, source, source.length, Buffer.from("@" + path + "\0"));
    const err = status === 0 ? null : toString(L, -1);
    lua.lua_settop(L, -2);
    return err;
  }

  /** Stops reload checks and frees the Lua state once no callback can run any more. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.reloadTimer);
    lua.lua_close(this.L);
    this.memory.free();
  }

  /** Memory used by this state, in KiB. */
  memoryKiB(): number {
    return lua.lua_gc(this.L, 3 /* LUA_GCCOUNT */, 0);
  }

  /** Bytes this state holds (garbage not yet collected included), without crossing into C; 0 once closed. */
  memoryBytes(): number {
    return this.closed ? 0 : this.memory.used();
  }

  /** The state's memory limit in bytes (0: none). */
  get memoryLimit(): number {
    return this.closed ? 0 : this.memory.limit();
  }

  /** Frees the garbage of a callback that failed (one that ran out of memory leaves the state at its limit). */
  collectGarbage(): void {
    lua.lua_gc(this.L, 2 /* LUA_GCCOLLECT */, 0);
  }
}

