// Moving strings and plain values across the Lua stack with as few FFI crossings and copies as possible.
import { CString, ptr, read, toBuffer, type Pointer } from "bun:ffi";
import { currentPayloadAddress, keptData, keptLength, KEPT_BINARY, KEPT_PAYLOAD, setDispatchStaging } from "../../native/runtime";
import {
  lua, type LuaState, LUA_TNIL, LUA_TBOOLEAN, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE,
} from "../../native/lua";

// One scratch area for outgoing strings: a JS string is UTF-8-encoded into it and Lua copies it out.
const SCRATCH_SIZE = 1 << 16;
// Encoding uses Buffer#utf8Write, Buffer#write without the encoding argument (about 20% faster on short
// strings in Bun 1.4): Bun and Node have it, the types do not declare it.
type Utf8Buffer = Buffer & { utf8Write(s: string, offset: number): number };
const scratch = Buffer.allocUnsafeSlow(SCRATCH_SIZE) as Utf8Buffer;
const scratchPtr = ptr(scratch);
// lua_tolstring writes the length here (size_t, little-endian; strings stay below 4 GiB). It is read with
// read.u32, never as lenOut[0]: the JIT treats FFI calls as not writing JS typed arrays and would reuse
// a stale length.
const lenOut = Buffer.allocUnsafeSlow(8);
const lenOutPtr = ptr(lenOut);
const outLength = () => read.u32(lenOutPtr, 0);
/**
 * Keeps lenOut alive. Only its address is used after start-up, and JSC frees a module constant that no
 * function refers to: Lua then wrote lengths into whatever Buffer got that memory next.
 */
export const lengthSlot = lenOut;

/** Pushes a JS string as UTF-8. */
export function pushString(L: LuaState, s: string): void {
  if (s.length * 3 <= SCRATCH_SIZE) {
    lua.lua_pushlstring(L, scratchPtr, scratch.utf8Write(s, 0));
  } else {
    const b = Buffer.from(s);
    lua.lua_pushlstring(L, ptr(b), b.length);
  }
}

/** Pushes raw bytes unchanged (NUL bytes and invalid UTF-8 included). */
export function pushBytes(L: LuaState, b: Uint8Array): void {
  if (b.length === 0) lua.lua_pushlstring(L, scratchPtr, 0);
  else lua.lua_pushlstring(L, ptr(b), b.length);
}

// The running event's payload, when it was a JS string. Lua interns strings, so while that event runs any
// Lua string at the payload's address (runtime.c keeps it) has the payload's bytes: a reply that echoes or
// relays the payload is read back without decoding.
let payloadString = "";
let payloadLength = -1;

// Event payloads are staged in the scratch area, where runtime.c's dispatch_event reads them.
setDispatchStaging(scratchPtr);

/** UTF-8-encodes an event payload into the scratch area and remembers it; its byte length, -1 when too long. */
export function stagePayload(s: string): number {
  if (s.length * 3 > SCRATCH_SIZE) return -1;
  payloadString = s;
  return (payloadLength = scratch.utf8Write(s, 0));
}

/** Copies a bytes payload into the scratch area; its length, -1 when too long. */
export function stageBytes(b: Uint8Array): number {
  if (b.length > SCRATCH_SIZE) return -1;
  scratch.set(b, 0);
  return b.length;
}

/** The data of the send runtime.c kept (reply_send), given its KEPT_ bits: text decoded as UTF-8 (the payload's
 * own JS string when it echoes the payload), or a view of binary bytes valid until the next kept send. */
export function keptReplyData(kept: number): string | Buffer {
  const text = (kept & KEPT_BINARY) === 0;
  if (text && kept & KEPT_PAYLOAD) return payloadString;
  const n = keptLength();
  if (n === 0) return text ? "" : EMPTY;
  return text ? new CString(keptData(), 0, n).toString() : toBuffer(keptData(), 0, n);
}

/** The string (or number) at idx decoded as UTF-8, or null when it is neither. */
export function toString(L: LuaState, idx: number): string | null {
  const p = lua.lua_tolstring(L, idx, lenOutPtr);
  if (!p) return null;
  const n = outLength();
  if (n === payloadLength && p === currentPayloadAddress()) return payloadString;
  return n === 0 ? "" : new CString(p, 0, n).toString();
}

/**
 * A view of the bytes of the string at idx, valid only while Lua keeps that string alive (until the
 * calling C function returns). Copy it (`Buffer.from(view)`) to keep it longer.
 */
export function viewBytes(L: LuaState, idx: number): Buffer | null {
  const p = lua.lua_tolstring(L, idx, lenOutPtr);
  if (!p) return null;
  const n = outLength();
  return n === 0 ? EMPTY : toBuffer(p, 0, n);
}
const EMPTY = Buffer.alloc(0);

/** Pointer and length of the string at idx (length in `lastLength()`); for identity checks. */
export function stringPointer(L: LuaState, idx: number): Pointer | null {
  return lua.lua_tolstring(L, idx, lenOutPtr);
}
export const lastLength = outLength;

/** Copies the bytes of the string at idx. */
export function toBytes(L: LuaState, idx: number): Buffer | null {
  const v = viewBytes(L, idx);
  return v && Buffer.from(v);
}

export type PlainValue = null | boolean | number | string | Uint8Array | PlainValue[] | { [k: string]: PlainValue };

/**
 * Pushes a JS value: null/undefined → nil, Uint8Array → string of those bytes, arrays → sequences
 * (1-based), plain objects → tables with string keys.
 */
export function pushValue(L: LuaState, v: unknown, depth = 0): void {
  if (v === null || v === undefined) lua.lua_pushnil(L);
  else if (typeof v === "string") pushString(L, v);
  else if (typeof v === "number") lua.lua_pushnumber(L, v);
  else if (typeof v === "boolean") lua.lua_pushboolean(L, v ? 1 : 0);
  else if (typeof v === "bigint") lua.lua_pushnumber(L, Number(v));
  else if (v instanceof Uint8Array) pushBytes(L, v);
  // Lua's API does not grow the stack on a push: each table level makes room for its key and value first
  // (without it, a few dozen levels wrote past the stack and crashed the process).
  else if (depth > 100 || !lua.lua_checkstack(L, 3)) throw new Error("value nested too deeply for Lua");
  else if (Array.isArray(v)) {
    lua.lua_createtable(L, v.length, 0);
    for (let i = 0; i < v.length; i++) {
      pushValue(L, v[i], depth + 1);
      lua.lua_rawseti(L, -2, i + 1);
    }
  } else if (typeof v === "object") {
    const keys = Object.keys(v as object);
    lua.lua_createtable(L, 0, keys.length);
    for (const k of keys) {
      pushString(L, k);
      pushValue(L, (v as Record<string, unknown>)[k], depth + 1);
      lua.lua_rawset(L, -3);
    }
  } else lua.lua_pushnil(L);
}

/**
 * Reads the Lua value at idx as JS: strings as UTF-8 text (or bytes with `binary`), tables as arrays when
 * their keys are exactly 1..n, otherwise as objects with string keys. Functions and userdata read as null.
 */
export function readValue(L: LuaState, idx: number, binary = false, depth = 0): PlainValue {
  switch (lua.lua_type(L, idx)) {
    case LUA_TNIL: return null;
    case LUA_TBOOLEAN: return lua.lua_toboolean(L, idx) !== 0;
    case LUA_TNUMBER: return lua.lua_tonumber(L, idx);
    case LUA_TSTRING: return binary ? toBytes(L, idx) : toString(L, idx);
    case LUA_TTABLE: return depth > 100 || !lua.lua_checkstack(L, 3) ? null : readTable(L, idx, binary, depth);
    default: return null;
  }
}

function readTable(L: LuaState, idx: number, binary: boolean, depth: number): PlainValue {
  const t = idx < 0 ? lua.lua_gettop(L) + idx + 1 : idx;
  const entries: [string | number, PlainValue][] = [];
  let isArray = true;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, t) !== 0) {
    let key: string | number;
    if (lua.lua_type(L, -2) === LUA_TNUMBER) {
      key = lua.lua_tonumber(L, -2);
      if (!Number.isInteger(key) || key < 1) isArray = false;
    } else {
      // lua_tolstring would convert a number key in place and confuse lua_next; keys here are not numbers.
      key = toString(L, -2) ?? "";
      isArray = false;
    }
    entries.push([key, readValue(L, -1, binary, depth + 1)]);
    lua.lua_settop(L, -2);
  }
  if (isArray && entries.every(([k]) => (k as number) <= entries.length)) {
    const arr: PlainValue[] = new Array(entries.length);
    for (const [k, v] of entries) arr[(k as number) - 1] = v;
    return arr;
  }
  const obj: { [k: string]: PlainValue } = {};
  for (const [k, v] of entries) obj[String(k)] = v;
  return obj;
}
