// mix.json_encode / mix.json_decode, written in JS over the Lua C API (see docs/lua-codec.md for the
// measurements against a pure-Lua codec). Both work on bytes, never on JS strings: Lua strings are copied
// with memcpy straight into (encode) or out of (decode) a scratch buffer, so NUL bytes and invalid UTF-8
// pass through unchanged and no UTF-8 decoding happens on the hot path.
import { dlopen, ptr, type Pointer } from "bun:ffi";
import {
  lua, type LuaState, LUA_REGISTRYINDEX, LUA_TNIL, LUA_TBOOLEAN, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE,
  LUA_TLIGHTUSERDATA,
} from "../../../native/lua";
import { loadLuaLibraries } from "../../../native/libs";
import { pushString, stringPointer, lastLength } from "../stack";
import type { ApiFamily } from "../family";
import jsonLua from "./json.lua" with { type: "text" };

// C API calls the shared bindings do not have, plus libc's memcpy for copying string bytes without a view.
const { symbols: C } = dlopen(loadLuaLibraries().lua, {
  lua_checkstack: { args: ["ptr", "i32"], returns: "i32" },
  lua_getmetatable: { args: ["ptr", "i32"], returns: "i32" },
  lua_setmetatable: { args: ["ptr", "i32"], returns: "i32" },
  lua_rawequal: { args: ["ptr", "i32", "i32"], returns: "i32" },
  lua_touserdata: { args: ["ptr", "i32"], returns: "ptr" },
});
const { memcpy } = dlopen("libc.so.6", { memcpy: { args: ["ptr", "ptr", "usize"], returns: "ptr" } }).symbols;

const MAX_DEPTH = 1000;
/** Registry key of the metatable that marks a table as a JSON object (json.lua sets it). */
const OBJECT_KEY = Buffer.from("connmix.json_object\0");
const SCRATCH = 64 * 1024;

class Scratch {
  buf = Buffer.allocUnsafeSlow(SCRATCH);
  at = ptr(this.buf) as number;
  reserve(used: number, extra: number): void {
    if (used + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < used + extra) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.buf.copy(next, 0, 0, used);
    this.buf = next;
    this.at = ptr(next) as number;
  }
  /** Drops a buffer a huge document made grow, so it is not kept for the life of the process. */
  shrink(): void {
    if (this.buf.length > 16 * SCRATCH) {
      this.buf = Buffer.allocUnsafeSlow(SCRATCH);
      this.at = ptr(this.buf) as number;
    }
  }
}

class JsonError extends Error {}

function fail(L: LuaState, message: string): number {
  lua.lua_settop(L, 1);
  lua.lua_pushnil(L);
  pushString(L, message);
  return 2;
}

const TYPE_NAMES = ["nil", "boolean", "userdata", "number", "string", "table", "function", "userdata", "thread"];

// ---------------------------------------------------------------- encode

const out = new Scratch();
let pos = 0;
const HEX = Buffer.from("0123456789abcdef");
const SHORT_ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x08: 0x62, 0x0c: 0x66, 0x0a: 0x6e, 0x0d: 0x72, 0x09: 0x74 };

function writeAscii(s: string): void {
  out.reserve(pos, s.length);
  pos += out.buf.latin1Write(s, pos);
}

function writeNumber(v: number): void {
  if (!Number.isFinite(v)) throw new JsonError(`json_encode: cannot encode ${v} (NaN and infinities have no JSON form)`);
  // Integers below 1e21 print without exponent or fraction; other numbers in the shortest form that reads
  // back as the same double (like Go and JavaScript).
  writeAscii(Object.is(v, -0) ? "0" : String(v));
}

function writeString(L: LuaState, idx: number): void {
  const p = stringPointer(L, idx) as Pointer;
  const n = lastLength();
  out.reserve(pos, n + 2);
  const buf = out.buf;
  buf[pos++] = 0x22;
  if (n > 0) memcpy(out.at + pos, p, n);
  const end = pos + n;
  let i = pos;
  while (i < end) {
    const c = buf[i];
    if (c < 0x20 || c === 0x22 || c === 0x5c) break;
    i++;
  }
  pos = i;
  if (i < end) escapeFrom(Buffer.from(buf.subarray(i, end)));
  out.buf[pos++] = 0x22;
}

/** Rewrites the tail of a string that needs escapes; bytes >= 0x80 stay as they are. */
function escapeFrom(tail: Buffer): void {
  for (const c of tail) {
    out.reserve(pos, 7);
    const buf = out.buf;
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) buf[pos++] = c;
    else if (SHORT_ESCAPES[c] !== undefined) {
      buf[pos++] = 0x5c;
      buf[pos++] = SHORT_ESCAPES[c];
    } else {
      pos += buf.latin1Write("\\u00", pos);
      buf[pos++] = HEX[c >> 4];
      buf[pos++] = HEX[c & 15];
    }
  }
}

function writeKey(L: LuaState, idx: number, type: number): void {
  if (type === LUA_TSTRING) return writeString(L, idx);
  if (type !== LUA_TNUMBER) throw new JsonError(`json_encode: cannot encode a table key of type ${TYPE_NAMES[type]}`);
  writeAscii('"');
  writeNumber(lua.lua_tonumber(L, idx));
  writeAscii('"');
}

/** Encodes the value at idx, which is the top of the stack. */
function encodeValue(L: LuaState, idx: number, depth: number): void {
  const type = lua.lua_type(L, idx);
  switch (type) {
    case LUA_TSTRING: return writeString(L, idx);
    case LUA_TNUMBER: return writeNumber(lua.lua_tonumber(L, idx));
    case LUA_TTABLE: return encodeTable(L, idx, depth + 1);
    case LUA_TBOOLEAN: return writeAscii(lua.lua_toboolean(L, idx) ? "true" : "false");
    case LUA_TNIL: return writeAscii("null");
    case LUA_TLIGHTUSERDATA: if (C.lua_touserdata(L, idx) === null) return writeAscii("null"); // mix.null
  }
  throw new JsonError(`json_encode: cannot encode a value of type ${TYPE_NAMES[type] ?? type}`);
}

/**
 * One pass over the table with lua_next, guessing its kind from the first key: a table whose keys come as
 * 1, 2, 3, ... is an array; one whose first key is a string is an object. Anything else (a hole, keys out
 * of order, a first key that is another number) is rewound and handled by encodeMixed.
 */
function encodeTable(L: LuaState, idx: number, depth: number): void {
  if (depth > MAX_DEPTH) throw new JsonError(`json_encode: tables nested more than ${MAX_DEPTH} deep (a cycle?)`);
  if (depth > 6 && !C.lua_checkstack(L, 4)) throw new JsonError("json_encode: Lua stack exhausted");
  const start = pos;
  const k = idx + 1;
  const v = idx + 2;
  lua.lua_pushnil(L);
  if (!lua.lua_next(L, idx)) return writeAscii(isObject(L, idx) ? "{}" : "[]");
  const firstType = lua.lua_type(L, k);
  if (firstType === LUA_TNUMBER && lua.lua_tonumber(L, k) === 1) {
    writeAscii("[");
    let expected = 1;
    do {
      if (expected > 1) {
        if (lua.lua_type(L, k) !== LUA_TNUMBER || lua.lua_tonumber(L, k) !== expected) {
          lua.lua_settop(L, idx);
          pos = start;
          return encodeMixed(L, idx, depth);
        }
        writeAscii(",");
      }
      encodeValue(L, v, depth);
      lua.lua_settop(L, k);
      expected++;
    } while (lua.lua_next(L, idx));
    return writeAscii("]");
  }
  if (firstType !== LUA_TSTRING) {
    lua.lua_settop(L, idx);
    return encodeMixed(L, idx, depth);
  }
  writeAscii("{");
  let first = true;
  do {
    if (!first) writeAscii(",");
    first = false;
    writeKey(L, k, lua.lua_type(L, k));
    writeAscii(":");
    encodeValue(L, v, depth);
    lua.lua_settop(L, k);
  } while (lua.lua_next(L, idx));
  writeAscii("}");
}

/**
 * Tables the single pass could not classify. Only positive integer keys, with at most as many holes as
 * values (or a largest key up to 10), make an array with null in the holes; anything else an object with
 * number keys written as strings.
 */
function encodeMixed(L: LuaState, idx: number, depth: number): void {
  const k = idx + 1;
  let count = 0;
  let max = 0;
  let array = true;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, idx)) {
    count++;
    const key = lua.lua_type(L, k) === LUA_TNUMBER ? lua.lua_tonumber(L, k) : 0;
    if (Number.isInteger(key) && key >= 1) max = Math.max(max, key);
    else array = false;
    lua.lua_settop(L, k);
  }
  if (array && (max <= 10 || max <= 2 * count)) {
    writeAscii("[");
    for (let i = 1; i <= max; i++) {
      if (i > 1) writeAscii(",");
      lua.lua_rawgeti(L, idx, i);
      encodeValue(L, k, depth);
      lua.lua_settop(L, idx);
    }
    return writeAscii("]");
  }
  writeAscii("{");
  let first = true;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, idx)) {
    if (!first) writeAscii(",");
    first = false;
    writeKey(L, k, lua.lua_type(L, k));
    writeAscii(":");
    encodeValue(L, idx + 2, depth);
    lua.lua_settop(L, k);
  }
  writeAscii("}");
}

/** Whether an empty table carries the JSON-object marker (mix.json_object, or decoded from `{}`). */
function isObject(L: LuaState, idx: number): boolean {
  if (!C.lua_getmetatable(L, idx)) return false;
  lua.lua_getfield(L, LUA_REGISTRYINDEX, OBJECT_KEY);
  const same = C.lua_rawequal(L, -1, -2) !== 0;
  lua.lua_settop(L, idx);
  return same;
}

// ---------------------------------------------------------------- decode

const src = new Scratch(); // the document, NUL-terminated so every read past the end sees a 0
const str = new Scratch(); // strings with escapes, after unescaping
let at = 0;
let end = 0;

function decodeError(what: string): JsonError {
  if (at >= end) return new JsonError(`json_decode: unexpected end of input (${what})`);
  const c = src.buf[at];
  const shown = c > 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).padStart(2, "0")}`;
  return new JsonError(`json_decode: ${what}, found ${shown} at offset ${at}`);
}

function skipSpace(): number {
  const buf = src.buf;
  let c = buf[at];
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = buf[++at];
  return c;
}

/** Pushes the value at `at`; returns false, pushing nothing, for null (the caller decides what null is). */
function decodeValue(L: LuaState, depth: number): boolean {
  const c = skipSpace();
  if (c === 0x22) decodeString(L);
  else if (c === 0x7b) decodeObject(L, depth + 1);
  else if (c === 0x5b) decodeArray(L, depth + 1);
  else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) lua.lua_pushnumber(L, decodeNumber());
  else if (literal("true")) lua.lua_pushboolean(L, 1);
  else if (literal("false")) lua.lua_pushboolean(L, 0);
  else if (literal("null")) return false;
  else throw decodeError("expected a value");
  return true;
}

function literal(word: string): boolean {
  const buf = src.buf;
  for (let i = 0; i < word.length; i++) if (buf[at + i] !== word.charCodeAt(i)) return false;
  at += word.length;
  return true;
}

function enter(L: LuaState, depth: number): void {
  if (depth > MAX_DEPTH) throw decodeError(`nested more than ${MAX_DEPTH} deep`);
  if (depth > 6 && !C.lua_checkstack(L, 4)) throw decodeError("Lua stack exhausted");
}

function decodeObject(L: LuaState, depth: number): void {
  enter(L, depth);
  at++;
  lua.lua_createtable(L, 0, 4);
  let c = skipSpace();
  if (c === 0x7d) {
    at++;
    lua.lua_getfield(L, LUA_REGISTRYINDEX, OBJECT_KEY); // `{}` stays an object when encoded again
    C.lua_setmetatable(L, -2);
    return;
  }
  for (;;) {
    if (c !== 0x22) throw decodeError("expected a string key");
    // A key without escapes is NUL-terminated in place (over its closing quote) and set with lua_setfield;
    // one with escapes is pushed first and set with lua_rawset.
    const keyAt = ++at;
    let escaped = false;
    for (c = src.buf[at]; c !== 0x22; c = src.buf[++at]) {
      if (c === 0x5c) {
        at = keyAt - 1;
        decodeString(L);
        escaped = true;
        break;
      }
      if (c < 0x20) throw decodeError("unescaped control character in string");
    }
    if (!escaped) src.buf[at++] = 0;
    if (skipSpace() !== 0x3a) throw decodeError("expected ':'");
    at++;
    if (decodeValue(L, depth)) {
      if (escaped) lua.lua_rawset(L, -3);
      else lua.lua_setfield(L, -2, (src.at + keyAt) as unknown as Buffer);
    } else if (escaped) lua.lua_settop(L, -2); // null: the key stays absent
    c = skipSpace();
    at++;
    if (c === 0x7d) return;
    if (c !== 0x2c) {
      at--;
      throw decodeError("expected ',' or '}'");
    }
    c = skipSpace();
  }
}

function decodeArray(L: LuaState, depth: number): void {
  enter(L, depth);
  at++;
  lua.lua_createtable(L, 0, 0);
  if (skipSpace() === 0x5d) {
    at++;
    return;
  }
  for (let i = 1; ; i++) {
    if (!decodeValue(L, depth)) lua.lua_pushlightuserdata(L, null); // mix.null keeps the array without holes
    lua.lua_rawseti(L, -2, i);
    const c = skipSpace();
    at++;
    if (c === 0x5d) return;
    if (c !== 0x2c) {
      at--;
      throw decodeError("expected ',' or ']'");
    }
  }
}

function decodeString(L: LuaState): void {
  const buf = src.buf;
  const start = ++at;
  for (let c = buf[at]; c !== 0x22; c = buf[++at]) {
    if (c === 0x5c) return decodeEscaped(L, start);
    if (c < 0x20) throw decodeError("unescaped control character in string");
  }
  lua.lua_pushlstring(L, src.at + start, at - start);
  at++;
}

const ESCAPES: Record<number, number> = { 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9 };

function decodeEscaped(L: LuaState, start: number): void {
  str.reserve(0, at - start);
  src.buf.copy(str.buf, 0, start, at);
  let n = at - start;
  for (let c = src.buf[at]; c !== 0x22; c = src.buf[++at]) {
    if (c < 0x20) throw decodeError("unescaped control character in string");
    str.reserve(n, 4);
    if (c !== 0x5c) {
      str.buf[n++] = c;
      continue;
    }
    c = src.buf[++at];
    if (c !== 0x75) {
      if (ESCAPES[c] === undefined) throw decodeError("invalid escape");
      str.buf[n++] = ESCAPES[c];
      continue;
    }
    let cp = hex4(at + 1);
    at += 4;
    // A surrogate pair is one code point; a lone surrogate becomes U+FFFD, as in Go.
    if (cp >= 0xd800 && cp < 0xdc00 && src.buf[at + 1] === 0x5c && src.buf[at + 2] === 0x75) {
      const low = hex4(at + 3);
      if (low >= 0xdc00 && low < 0xe000) {
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        at += 6;
      }
    }
    if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
    n += str.buf.write(String.fromCodePoint(cp), n, "utf8");
  }
  lua.lua_pushlstring(L, str.at, n);
  at++;
  str.shrink();
}

function hex4(i: number): number {
  let v = 0;
  for (let j = i; j < i + 4; j++) {
    const c = src.buf[j] | 0x20; // lower-cases letters
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (d < 0) {
      at = j;
      throw decodeError("invalid \\u escape");
    }
    v = v * 16 + d;
  }
  return v;
}

function decodeNumber(): number {
  const buf = src.buf;
  const start = at;
  if (buf[at] === 0x2d) at++;
  let c = buf[at];
  let v = 0;
  if (c === 0x30) c = buf[++at];
  else if (c >= 0x31 && c <= 0x39) {
    do {
      v = v * 10 + (c - 0x30);
      c = buf[++at];
    } while (c >= 0x30 && c <= 0x39);
  } else throw decodeError("invalid number");
  // Up to 15 digits, an integer read digit by digit is exact; anything else goes through Number().
  if (c !== 0x2e && c !== 0x65 && c !== 0x45 && at - start <= 15) return buf[start] === 0x2d ? -v : v;
  if (c === 0x2e) {
    c = buf[++at];
    if (c < 0x30 || c > 0x39) throw decodeError("expected a digit after '.'");
    while (c >= 0x30 && c <= 0x39) c = buf[++at];
  }
  if (c === 0x65 || c === 0x45) {
    c = buf[++at];
    if (c === 0x2b || c === 0x2d) c = buf[++at];
    if (c < 0x30 || c > 0x39) throw decodeError("expected a digit in the exponent");
    while (c >= 0x30 && c <= 0x39) c = buf[++at];
  }
  return Number(buf.latin1Slice(start, at));
}

export const json: ApiFamily = {
  name: "json",
  lua: jsonLua,
  functions: {
    json_encode(L) {
      lua.lua_settop(L, 1);
      pos = 0;
      try {
        encodeValue(L, 1, 0);
      } catch (e) {
        return fail(L, e instanceof JsonError ? e.message : `json_encode: ${(e as Error).message}`);
      }
      lua.lua_pushlstring(L, out.at, pos);
      out.shrink();
      return 1;
    },
    json_decode(L) {
      const type = lua.lua_type(L, 1);
      if (type !== LUA_TSTRING) return fail(L, `json_decode expects a string, got ${TYPE_NAMES[type] ?? "no value"}`);
      lua.lua_settop(L, 1);
      const p = stringPointer(L, 1) as Pointer;
      end = lastLength();
      src.reserve(0, end + 1);
      if (end > 0) memcpy(src.at, p, end);
      src.buf[end] = 0;
      at = 0;
      try {
        const pushed = decodeValue(L, 0);
        if (skipSpace() !== 0 || at < end) throw decodeError("expected the end of input");
        if (!pushed) lua.lua_pushnil(L);
      } catch (e) {
        return fail(L, e instanceof JsonError ? e.message : `json_decode: ${(e as Error).message}`);
      } finally {
        src.shrink();
      }
      return 1;
    },
    json_null(L) {
      lua.lua_pushlightuserdata(L, null);
      return 1;
    },
  },
};
