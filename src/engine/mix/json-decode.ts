// json_decode: a strict RFC 8259 parser over the document's bytes that pushes Lua values as it goes.
// JSON null is left out of objects and becomes mix.null (lightuserdata NULL) in arrays, so that arrays keep
// their length; `{}` gets the object marker so it encodes back as `{}`.
import type { Pointer } from "bun:ffi";
import { lua, type LuaState, LUA_REGISTRYINDEX, LUA_TSTRING } from "../../../native/lua";
import { stringPointer, lastLength } from "../../lua/stack";
import { memcpy, Scratch, fail, typeName } from "./codec-native";

export const MAX_DEPTH = 1000;
/** Registry key of the metatable that marks a table as a JSON object (json.lua sets it). */
export const OBJECT_KEY = Buffer.from("connmix.json_object\0");

export class JsonError extends Error {}

const src = new Scratch(); // the document, NUL-terminated so every read past the end sees a 0
const str = new Scratch(); // strings with escapes, after unescaping
let at = 0;
let end = 0;
// Element counts of the document's arrays and objects in opening order, so that each Lua table is created
// at its final size: growing tables one rehash at a time cost more than the whole counting pass.
let sizes = new Int32Array(256);
let opened = 0;
const open = new Int32Array(MAX_DEPTH + 1);

/** One pass over the bytes counting commas per container; only a size hint, the parse validates. */
function countElements(): void {
  const buf = src.buf;
  let count = 0;
  let depth = 0;
  for (let i = 0; i < end; i++) {
    const c = buf[i];
    if (c === 0x22) {
      for (i++; i < end && buf[i] !== 0x22; i++) if (buf[i] === 0x5c) i++;
    } else if (c === 0x2c) {
      if (depth > 0) sizes[open[depth - 1]]++;
    } else if (c === 0x5b || c === 0x7b) {
      if (depth === MAX_DEPTH) return; // the parse fails before it gets here
      if (count === sizes.length) {
        const grown = new Int32Array(count * 2);
        grown.set(sizes);
        sizes = grown;
      }
      sizes[count] = 1;
      open[depth++] = count++;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
}

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
  if (depth > 6 && !lua.lua_checkstack(L, 4)) throw decodeError("Lua stack exhausted");
}

function decodeObject(L: LuaState, depth: number): void {
  enter(L, depth);
  at++;
  lua.lua_createtable(L, 0, sizes[opened++]);
  let c = skipSpace();
  if (c === 0x7d) {
    at++;
    lua.lua_getfield(L, LUA_REGISTRYINDEX, OBJECT_KEY); // `{}` stays an object when encoded again
    lua.lua_setmetatable(L, -2);
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
      else lua.lua_setfield(L, -2, (src.at + keyAt) as Pointer);
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
  lua.lua_createtable(L, sizes[opened++], 0);
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
  lua.lua_pushlstring(L, (src.at + start) as Pointer, at - start);
  at++;
}

// The byte each two-character escape stands for: \" \\ \/ \b \f \n \r \t.
const ESCAPES: Record<number, number> = {
  0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9,
};

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

// Powers of ten that are exact doubles: an integer below 2^53 divided by one of them is correctly rounded.
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

function decodeNumber(): number {
  const buf = src.buf;
  const start = at;
  if (buf[at] === 0x2d) at++;
  let c = buf[at];
  let digits = 0; // the number without its point, while exact
  if (c === 0x30) c = buf[++at];
  else if (c >= 0x31 && c <= 0x39) {
    do {
      digits = digits * 10 + (c - 0x30);
      c = buf[++at];
    } while (c >= 0x30 && c <= 0x39);
  } else throw decodeError("invalid number");
  let scale = 0;
  if (c === 0x2e) {
    c = buf[++at];
    if (c < 0x30 || c > 0x39) throw decodeError("expected a digit after '.'");
    do {
      digits = digits * 10 + (c - 0x30);
      scale++;
      c = buf[++at];
    } while (c >= 0x30 && c <= 0x39);
  }
  const sign = buf[start] === 0x2d ? -1 : 1;
  if (c !== 0x65 && c !== 0x45 && digits <= Number.MAX_SAFE_INTEGER && at - start <= 16) {
    return (sign * digits) / POW10[scale];
  }
  if (c === 0x65 || c === 0x45) {
    c = buf[++at];
    if (c === 0x2b || c === 0x2d) c = buf[++at];
    if (c < 0x30 || c > 0x39) throw decodeError("expected a digit in the exponent");
    while (c >= 0x30 && c <= 0x39) c = buf[++at];
  }
  const value = Number(buf.toString("latin1", start, at));
  if (!Number.isFinite(value)) {
    at = start;
    throw decodeError("number out of range");
  }
  return value;
}

/** host.json_decode(s) -> value | nil, err */
export function decode(L: LuaState): number {
  const type = lua.lua_type(L, 1);
  if (type !== LUA_TSTRING) return fail(L, `json_decode expects a string, got ${typeName(type)}`);
  lua.lua_settop(L, 1);
  const p = stringPointer(L, 1) as Pointer;
  end = lastLength();
  src.reserve(0, end + 1);
  if (end > 0) memcpy(src.at, p, end);
  src.buf[end] = 0;
  at = 0;
  opened = 0;
  countElements();
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
}
