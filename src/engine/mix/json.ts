// mix.json_encode / mix.json_decode in JS over the Lua C API (docs/lua-codec.md has the measurements
// against a pure-Lua codec). Both work on bytes, never on JS strings: string bytes are memcpy'd between Lua
// and a scratch buffer, so NUL bytes and invalid UTF-8 pass through unchanged and nothing is UTF-8 decoded.
import type { Pointer } from "bun:ffi";
import {
  lua, type LuaState, LUA_REGISTRYINDEX, LUA_TNIL, LUA_TBOOLEAN, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE,
  LUA_TLIGHTUSERDATA,
} from "../../../native/lua";
import { stringPointer, lastLength } from "../../lua/stack";
import type { LuaFamily } from "../../lua/family";
import { memcpy, Scratch, fail, typeName } from "./codec-native";
import { decode, JsonError, MAX_DEPTH, OBJECT_KEY } from "./json-decode";
import jsonLua from "./json.lua" with { type: "text" };

const out = new Scratch();
let pos = 0;
const HEX = Buffer.from("0123456789abcdef");
// Bytes with a two-character escape (\" \\ \b \f \n \r \t); other control bytes are written as \u00XX.
const SHORT_ESCAPES: Record<number, number> = {
  0x22: 0x22, 0x5c: 0x5c, 0x08: 0x62, 0x0c: 0x66, 0x0a: 0x6e, 0x0d: 0x72, 0x09: 0x74,
};

function writeByte(c: number): void {
  if (pos === out.buf.length) out.reserve(pos, 1);
  out.buf[pos++] = c;
}

function writeAscii(s: string): void {
  out.reserve(pos, s.length);
  pos += out.buf.write(s, pos, "latin1");
}

function writeNumber(v: number): void {
  if (!Number.isFinite(v)) {
    throw new JsonError(`json_encode: cannot encode ${v} (NaN and infinities have no JSON form)`);
  }
  // Integers below 1e21 print without exponent or fraction; other numbers in the shortest form that reads
  // back as the same double (like Go and JavaScript).
  if (Number.isSafeInteger(v)) return writeInteger(v);
  writeAscii(String(v));
}

function writeInteger(v: number): void {
  if (v < 0 || v > 0x7fffffff) return writeAscii(String(v));
  out.reserve(pos, 10);
  const buf = out.buf;
  let digits = 1;
  for (let x = v; x >= 10; x = (x / 10) | 0) digits++;
  for (let i = pos + digits - 1; i >= pos; i--) {
    buf[i] = 0x30 + (v % 10);
    v = (v / 10) | 0;
  }
  pos += digits;
}

function writeString(L: LuaState, idx: number): void {
  const p = stringPointer(L, idx) as Pointer;
  const n = lastLength();
  out.reserve(pos, n + 2);
  const buf = out.buf;
  buf[pos++] = 0x22;
  if (n > 0) memcpy((out.at + pos) as Pointer, p, n);
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
      pos += buf.write("\\u00", pos, "latin1");
      buf[pos++] = HEX[c >> 4];
      buf[pos++] = HEX[c & 15];
    }
  }
}

function writeKey(L: LuaState, idx: number, type: number): void {
  if (type === LUA_TSTRING) return writeString(L, idx);
  if (type !== LUA_TNUMBER) throw new JsonError(`json_encode: cannot encode a table key of type ${typeName(type)}`);
  writeByte(0x22);
  writeNumber(lua.lua_tonumber(L, idx));
  writeByte(0x22);
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
    case LUA_TLIGHTUSERDATA: if (lua.lua_touserdata(L, idx) === null) return writeAscii("null"); // mix.null
  }
  throw new JsonError(`json_encode: cannot encode a value of type ${typeName(type)}`);
}

/**
 * One pass over the table with lua_next, guessing its kind from the first key: a table whose keys come as
 * 1, 2, 3, ... is an array; one whose first key is a string (or that is marked as an object) is an object.
 * Anything else (a hole, keys out of order, a first key that is another number) is rewound and handled by
 * encodeMixed.
 */
function encodeTable(L: LuaState, idx: number, depth: number): void {
  if (depth > MAX_DEPTH) throw new JsonError(`json_encode: tables nested more than ${MAX_DEPTH} deep (a cycle?)`);
  if (depth > 6 && !lua.lua_checkstack(L, 4)) throw new JsonError("json_encode: Lua stack exhausted");
  const start = pos;
  const k = idx + 1;
  const v = idx + 2;
  const object = isObject(L, idx);
  lua.lua_pushnil(L);
  if (!lua.lua_next(L, idx)) return writeAscii(object ? "{}" : "[]");
  const firstType = lua.lua_type(L, k);
  if (!object && firstType === LUA_TNUMBER && lua.lua_tonumber(L, k) === 1) {
    writeByte(0x5b);
    let expected = 1;
    do {
      if (expected > 1) {
        if (lua.lua_type(L, k) !== LUA_TNUMBER || lua.lua_tonumber(L, k) !== expected) {
          lua.lua_settop(L, idx);
          pos = start;
          return encodeMixed(L, idx, depth);
        }
        writeByte(0x2c);
      }
      encodeValue(L, v, depth);
      lua.lua_settop(L, k);
      expected++;
    } while (lua.lua_next(L, idx));
    return writeByte(0x5d);
  }
  if (!object && firstType !== LUA_TSTRING) {
    lua.lua_settop(L, idx);
    return encodeMixed(L, idx, depth);
  }
  writeByte(0x7b);
  let first = true;
  do {
    if (!first) writeByte(0x2c);
    first = false;
    writeKey(L, k, lua.lua_type(L, k));
    writeByte(0x3a);
    encodeValue(L, v, depth);
    lua.lua_settop(L, k);
  } while (lua.lua_next(L, idx));
  writeByte(0x7d);
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
    writeByte(0x5b);
    for (let i = 1; i <= max; i++) {
      if (i > 1) writeByte(0x2c);
      lua.lua_rawgeti(L, idx, i);
      encodeValue(L, k, depth);
      lua.lua_settop(L, idx);
    }
    return writeByte(0x5d);
  }
  writeByte(0x7b);
  let first = true;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, idx)) {
    if (!first) writeByte(0x2c);
    first = false;
    writeKey(L, k, lua.lua_type(L, k));
    writeByte(0x3a);
    encodeValue(L, idx + 2, depth);
    lua.lua_settop(L, k);
  }
  writeByte(0x7d);
}

/** Whether a table carries the JSON-object marker (mix.json_object, or decoded from `{}`). */
function isObject(L: LuaState, idx: number): boolean {
  if (!lua.lua_getmetatable(L, idx)) return false;
  lua.lua_getfield(L, LUA_REGISTRYINDEX, OBJECT_KEY);
  const same = lua.lua_rawequal(L, -1, -2) !== 0;
  lua.lua_settop(L, idx);
  return same;
}

export const json: LuaFamily = {
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
    json_decode: decode,
    json_null(L) {
      lua.lua_pushlightuserdata(L, null);
      return 1;
    },
  },
};
