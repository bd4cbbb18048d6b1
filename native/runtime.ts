// The runtime's C side (runtime.c: runaway guard, event dispatch, memory limit), loaded by compile.ts.
import { read, type Pointer } from "bun:ffi";
import { bunAllocator, loadC } from "./compile";
import { functionAddress } from "./ffi";

const { symbols } = loadC({
  library: "runtime",
  symbols: {
    guard_budget: { args: ["i32"], returns: "void" },
    guard_resume: { args: ["ptr", "i32"], returns: "i32" },
    guard_pcall: { args: ["ptr", "i32", "i32", "i32"], returns: "i32" },
    guard_hook: { args: ["ptr", "ptr"], returns: "void" },
    dispatch_payload_address: { args: [], returns: "ptr" },
    dispatch_staging: { args: ["ptr"], returns: "void" },
    dispatch_event: { args: ["f64", "i32", "f64", "i32", "f64"], returns: "i32" },
    reply_slot: { args: [], returns: "ptr" },
    kept_for_js_slot: { args: [], returns: "ptr" },
    reply_send: { args: ["ptr"], returns: "i32" },
    memory_new: { args: ["f64"], returns: "ptr" },
    memory_free: { args: ["ptr"], returns: "void" },
    memory_newstate: { args: ["ptr"], returns: "ptr" },
    memory_set_limit: { args: ["ptr", "f64"], returns: "void" },
    memory_allocator: { args: ["ptr", "ptr"], returns: "void" },
    guard_resume_same_slice: { args: ["ptr", "i32"], returns: "i32" },
    runtime_resume: { args: ["ptr", "i32"], returns: "i32" },
    js_call: { args: ["ptr"], returns: "i32" },
  } as const,
});

// Lua states allocate from Bun's allocator (see allocator.c); set once, before any state exists.
const bun = bunAllocator();
symbols.memory_allocator(bun.realloc, bun.free);

let budget = -1;
/** Sets the budget of the slices that follow, in ms (0 disables); cheap when unchanged. */
export function setGuardBudget(ms: number): void {
  if (ms !== budget) symbols.guard_budget((budget = ms));
}
/** lua_resume and lua_pcall, each starting a new guarded slice. */
export const guardedResume = symbols.guard_resume;
/** lua_resume continuing the current slice (a script's own yield answered at once). */
export const resumeSameSlice = symbols.guard_resume_same_slice;
/** lua_resume of the runtime's own short Lua code, with the memory limit off. */
export const runtimeResume = symbols.runtime_resume;
export const guardedPcall = symbols.guard_pcall;
/** The C hook's address, for lua_sethook(L, hook, LUA_MASKCOUNT, count). */
export const guardHook = functionAddress(symbols.guard_hook);

/**
 * Starts coroutine `co` (its address as a number) on the worker at its stack index 1 with (kind, id, the first
 * `len` staged bytes or nil when len < 0, extra); `flags` is the kind plus EVENT_TEXT and EVENT_REPLY. Returns
 * lua_resume's status (0: the callback finished) plus the KEPT_ bits of a kept send to deliver. See runtime.c.
 */
export const dispatchEvent = symbols.dispatch_event;
/** Where dispatchEvent reads payloads: a buffer JS keeps alive and writes each payload into first. */
export const setDispatchStaging = symbols.dispatch_staging;
/** dispatchEvent flags: the payload is the JS string staged last (stack.ts); the event's first reply may be kept. */
export const EVENT_TEXT = 0x100;
export const EVENT_REPLY = 0x200;

// The send kept by reply_send (runtime.c's kept_reply: data pointer, client id, byte length), read with read.*,
// never through a typed array (see currentPayloadAddress).
const kept = symbols.reply_slot() as Pointer;
/** dispatchEvent's status bits (above lua_resume's status) about a send runtime.c kept that JS must deliver now:
 * there is one; its string is the event's payload (JS has it); it is binary. */
export const KEPT_REPLY = 0x100;
export const KEPT_PAYLOAD = 0x200;
export const KEPT_BINARY = 0x400;
/** The status bits without the kept send's. */
export const STATUS_MASK = 0xff;
/** The kept send's data pointer, client id and byte length. */
export const keptData = () => read.ptr(kept, 0) as Pointer;
export const keptId = () => read.f64(kept, 8);
export const keptLength = () => read.i32(kept, 16);
const keptForJsSlot = symbols.kept_for_js_slot() as Pointer;
/** In a JS function Lua called, on entry: the KEPT_ bits of a send it must deliver first, 0 when none. */
export const keptForJs = () => read.i32(keptForJsSlot, 0);
/** conn:send's C function: keeps a reply for JS, or calls its JS function (upvalue 1) like js_call. */
export const replySend = functionAddress(symbols.reply_send);
const payloadAddress = symbols.dispatch_payload_address() as Pointer;
/** Address of the running event's payload string inside Lua (0 outside events). */
export const currentPayloadAddress = () => read.ptr(payloadAddress, 0);

/** A Lua state whose allocations go through runtime.c's limited_alloc, and its accounting. */
export interface LimitedState {
  L: Pointer;
  /** Bytes the state holds (garbage not yet collected included). */
  used(): number;
  limit(): number;
  setLimit(bytes: number): void;
  /** Frees the accounting; only after lua_close(L). */
  free(): void;
}

/** A new Lua state that may hold `limitBytes` (0: no limit); null when even that cannot be allocated. */
export function newLimitedState(limitBytes: number): LimitedState | null {
  const m = symbols.memory_new(limitBytes) as Pointer | null;
  if (!m) return null;
  const L = symbols.memory_newstate(m) as Pointer | null;
  if (!L) {
    symbols.memory_free(m);
    return null;
  }
  // read.f64, not a typed array over C memory: optimized JS may reuse a stale typed-array load across FFI calls.
  return {
    L,
    used: () => read.f64(m, 0),
    limit: () => read.f64(m, 8),
    setLimit: (bytes) => symbols.memory_set_limit(m, bytes),
    free: () => symbols.memory_free(m),
  };
}

/** The C function that calls a JSCallback (upvalue 1, a light userdata) with the memory limit off. */
export const jsCall = functionAddress(symbols.js_call);
