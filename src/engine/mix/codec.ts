// JS side of the mix codec functions (codec.lua): base64, md5/sha1 with Bun's native hashing, and PHP's
// pack()/unpack() (docs/lua-codec.md lists the format codes). All inputs are read as bytes.
import { toBuffer, type Pointer } from "bun:ffi";
import { lua, type LuaState, LUA_TNUMBER, LUA_TSTRING } from "../../../native/lua";
import { pushBytes, pushString, stringPointer, lastLength, viewBytes } from "../../lua/stack";
import type { LuaFamily } from "../../lua/family";
import { fail, guarded, typeName } from "./codec-native";
import codecLua from "./codec.lua" with { type: "text" };

/** The bytes of a string (or number) argument, or null after pushing `nil, err`. */
function bytesArg(L: LuaState, idx: number, fn: string): Buffer | null {
  const type = lua.lua_type(L, idx);
  if (type === LUA_TSTRING || type === LUA_TNUMBER) return viewBytes(L, idx);
  fail(L, `${fn} expects a string, got ${typeName(type)}`);
  return null;
}

function digest(hash: typeof Bun.MD5 | typeof Bun.SHA1, hex: boolean) {
  return (L: LuaState): number => {
    const data = bytesArg(L, 1, hash === Bun.MD5 ? "md5" : "sha1");
    if (!data) return 2;
    if (hex) pushString(L, hash.hash(data, "hex"));
    else pushBytes(L, hash.hash(data) as Uint8Array);
    return 1;
  };
}

// Both alphabets (standard and URL-safe), padding optional; line breaks are ignored, anything else is an error.
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function base64Decode(L: LuaState): number {
  const data = bytesArg(L, 1, "base64_decode");
  if (!data) return 2;
  const text = data.toString("latin1").replace(/[\r\n]/g, "");
  const padded = text.endsWith("=");
  if (!BASE64.test(text) || (padded && text.length % 4 !== 0) || text.length % 4 === 1) {
    const bad = text.search(/[^A-Za-z0-9+/_=-]/);
    return fail(L, `base64_decode: illegal base64 data${bad >= 0 ? ` at input byte ${bad}` : ""}`);
  }
  pushBytes(L, Buffer.from(text, "base64"));
  return 1;
}

// ---------------------------------------------------------------- PHP pack / unpack

/** Format items: a code, its repeat count (-1 for `*`) and, for unpack, the name up to the next `/`. */
function parseFormat(format: string, named: boolean): { code: string; count: number; name: string }[] {
  const items = [];
  let i = 0;
  while (i < format.length) {
    const code = format[i++];
    let count = 1;
    if (format[i] === "*") {
      count = -1;
      i++;
    } else if (format[i] >= "0" && format[i] <= "9") {
      const digits = /^\d+/.exec(format.slice(i))![0];
      count = Math.min(Number(digits), 0x7fffffff);
      i += digits.length;
    }
    let name = "";
    if (named) {
      const slash = format.indexOf("/", i);
      const stop = slash < 0 ? format.length : slash;
      name = format.slice(i, stop).slice(0, 200);
      i = stop + 1;
    }
    items.push({ code, count, name });
  }
  return items;
}

/** Byte size of one value of each numeric code (x86-64: int is 4 bytes, long long 8, machine order little). */
const SIZES: Record<string, number> = {
  c: 1, C: 1, s: 2, S: 2, n: 2, v: 2, i: 4, I: 4, l: 4, L: 4, N: 4, V: 4,
  q: 8, Q: 8, J: 8, P: 8, f: 4, g: 4, G: 4, d: 8, e: 8, E: 8,
};
const MAX_PACKED = 256 * 1024 * 1024; // a count typo must not allocate gigabytes
const BIG_ENDIAN = new Set(["n", "N", "J", "G", "E"]);
const STRING_CODES = new Set(["a", "A", "Z", "h", "H"]);

function numberArg(L: LuaState, idx: number, code: string): number {
  const type = lua.lua_type(L, idx);
  if (type === LUA_TNUMBER) return lua.lua_tonumber(L, idx);
  const text = type === LUA_TSTRING ? viewBytes(L, idx)!.toString("latin1").trim() : "";
  const value = Number(text);
  if (text === "" || Number.isNaN(value)) {
    throw new Error(`Type ${code}: argument ${idx - 1} must be a number, got ${typeName(type)}`);
  }
  return value;
}

/** Writes one numeric value the way PHP does: integers truncated toward zero and wrapped to the width. */
function writeNumber(view: DataView, at: number, code: string, v: number): void {
  const little = !BIG_ENDIAN.has(code);
  switch (SIZES[code]) {
    case 1: return view.setUint8(at, v & 0xff);
    case 2: return view.setUint16(at, v & 0xffff, little);
    case 4:
      if (code === "f" || code === "g" || code === "G") return view.setFloat32(at, v, little);
      return view.setUint32(at, Number.isFinite(v) ? v >>> 0 : 0, little);
    default:
      if (code === "d" || code === "e" || code === "E") return view.setFloat64(at, v, little);
      view.setBigUint64(at, Number.isFinite(v) ? BigInt.asUintN(64, BigInt(Math.trunc(v))) : 0n, little);
  }
}

function hexNibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : 0; // PHP warns and uses 0
}

/** host.php_pack(format, ...) -> bytes | nil, err */
function pack(L: LuaState): number {
  const top = lua.lua_gettop(L);
  const format = bytesArg(L, 1, "php_pack");
  if (!format) return 2;
  try {
    // First pass, as PHP: resolve `*`, check the argument count and size the output.
    const items = parseFormat(format.toString("latin1"), false);
    let arg = 2;
    let size = 0;
    let at = 0;
    for (const item of items) {
      const { code } = item;
      if (code === "x" || code === "X" || code === "@") {
        if (item.count < 0) item.count = 1;
      } else if (STRING_CODES.has(code)) {
        if (arg > top) throw new Error(`Type ${code}: not enough arguments`);
        if (item.count < 0) item.count = stringArg(L, arg, code).length + (code === "Z" ? 1 : 0);
        arg++;
      } else if (SIZES[code]) {
        if (item.count < 0) item.count = top - arg + 1;
        arg += item.count;
        if (arg > top + 1) throw new Error(`Type ${code}: too few arguments`);
      } else throw new Error(`Type ${code}: unknown format code`);
      const n = item.count;
      if (code === "X") at = Math.max(0, at - n);
      else if (code === "@") at = n;
      else at += code === "h" || code === "H" ? Math.ceil(n / 2) : n * (SIZES[code] ?? 1);
      size = Math.max(size, at);
    }
    if (size > MAX_PACKED) throw new Error(`the result would be ${size} bytes, more than ${MAX_PACKED}`);
    const out = Buffer.alloc(size);
    const view = new DataView(out.buffer, out.byteOffset, out.length);
    arg = 2;
    at = 0;
    for (const { code, count } of items) {
      if (code === "a" || code === "A" || code === "Z") {
        const s = stringArg(L, arg++, code);
        out.fill(code === "A" ? 0x20 : 0, at, at + count);
        s.copy(out, at, 0, Math.min(s.length, code === "Z" ? Math.max(0, count - 1) : count));
        at += count;
      } else if (code === "h" || code === "H") {
        const s = stringArg(L, arg++, code);
        const n = Math.min(count, s.length); // PHP warns when the string is shorter
        for (let i = 0; i < n; i++) {
          const nibble = hexNibble(s[i]);
          const shifted = (code === "H") === (i % 2 === 0) ? nibble << 4 : nibble;
          out[at + (i >> 1)] = i % 2 === 0 ? shifted : out[at + (i >> 1)] | shifted;
        }
        at += Math.ceil(n / 2);
      } else if (code === "x") {
        out.fill(0, at, at + count);
        at += count;
      } else if (code === "X") {
        at = Math.max(0, at - count);
      } else if (code === "@") {
        if (count > at) out.fill(0, at, count);
        at = count;
      } else {
        for (let i = 0; i < count; i++, at += SIZES[code]) writeNumber(view, at, code, numberArg(L, arg++, code));
      }
    }
    pushBytes(L, out.subarray(0, at)); // PHP's result ends where the last code left the position
    return 1;
  } catch (e) {
    return fail(L, `php_pack: ${(e as Error).message}`);
  }
}

function stringArg(L: LuaState, idx: number, code: string): Buffer {
  const type = lua.lua_type(L, idx);
  if (type !== LUA_TSTRING && type !== LUA_TNUMBER) {
    throw new Error(`Type ${code}: argument ${idx - 1} must be a string, got ${typeName(type)}`);
  }
  return viewBytes(L, idx)!;
}

/** PHP array keys: a canonical decimal integer string is an integer key. */
function pushKey(L: LuaState, key: string): void {
  if (/^(0|-?[1-9]\d{0,14})$/.test(key)) lua.lua_pushnumber(L, Number(key)); // up to 15 digits: exact
  else pushBytes(L, Buffer.from(key, "latin1"));
}

function readNumber(data: Buffer, at: number, code: string): number {
  const view = new DataView(data.buffer, data.byteOffset + at, SIZES[code]);
  const little = !BIG_ENDIAN.has(code);
  switch (code) {
    case "c": return view.getInt8(0);
    case "C": return view.getUint8(0);
    case "s": return view.getInt16(0, little);
    case "S": case "n": case "v": return view.getUint16(0, little);
    case "i": case "l": return view.getInt32(0, little);
    case "I": case "L": case "N": case "V": return view.getUint32(0, little);
    case "f": case "g": case "G": return view.getFloat32(0, little);
    case "d": case "e": case "E": return view.getFloat64(0, little);
    default: return Number(view.getBigInt64(0, little)); // PHP integers are signed 64-bit, Q/J/P included
  }
}

/** host.php_unpack(format, data[, offset]) -> table | nil, err */
function unpack(L: LuaState): number {
  const format = bytesArg(L, 1, "php_unpack");
  if (!format) return 2;
  const type = lua.lua_type(L, 2);
  if (type !== LUA_TSTRING) return fail(L, `php_unpack expects a string to unpack, got ${typeName(type)}`);
  const p = stringPointer(L, 2) as Pointer;
  const whole = lastLength();
  const offset = lua.lua_type(L, 3) === LUA_TNUMBER ? Math.trunc(lua.lua_tonumber(L, 3)) : 0;
  if (!(offset >= 0 && offset <= whole)) return fail(L, `php_unpack: offset ${offset} is out of input range`);
  const len = whole - offset;
  const data = len === 0 ? Buffer.alloc(0) : toBuffer(p, offset, len);
  const base = (p as number) + offset;
  const items = parseFormat(format.toString("latin1"), true);
  lua.lua_settop(L, 3);
  lua.lua_createtable(L, 0, items.length);
  let at = 0;
  for (const item of items) {
    const { code, name } = item;
    let count = item.count;
    let size: number;
    if (code === "X") {
      size = -1;
      if (count < 0) count = 1;
    } else if (code === "@") size = 0;
    else if (code === "a" || code === "A" || code === "Z") [size, count] = [count, 1];
    else if (code === "h" || code === "H") [size, count] = [count > 0 ? Math.ceil(count / 2) : count, 1];
    else if (code === "x") size = 1;
    else if (SIZES[code]) size = SIZES[code];
    else return fail(L, `php_unpack: invalid format type ${code}`);
    for (let i = 0; i !== count; i++) {
      if (at + size > len) {
        if (count < 0) break; // `*` stops at the end of the input
        return fail(L, `php_unpack: Type ${code}: not enough input, need ${size}, have ${len - at}`);
      }
      const key = count !== 1 || name === "" ? name + (i + 1) : name;
      if (code === "a" || code === "A" || code === "Z") {
        const n = size >= 0 ? Math.min(size, len - at) : len - at;
        let end = at + n;
        if (code === "A") while (end > at && [0, 0x20, 0x09, 0x0d, 0x0a].includes(data[end - 1])) end--;
        const nul = code === "Z" ? data.indexOf(0, at) : -1;
        if (nul >= 0 && nul < end) end = nul;
        pushKey(L, key);
        lua.lua_pushlstring(L, (base + at) as Pointer, end - at);
        lua.lua_rawset(L, -3);
        size = n;
      } else if (code === "h" || code === "H") {
        let nibbles = size >= 0 ? Math.min(size * 2, (len - at) * 2) : (len - at) * 2;
        if (nibbles > 0 && item.count > 0) nibbles -= item.count % 2;
        let hex = data.toString("hex", at, at + Math.ceil(nibbles / 2));
        if (code === "h") hex = hex.replace(/(.)(.)/g, "$2$1");
        pushKey(L, key);
        pushString(L, hex.slice(0, nibbles));
        lua.lua_rawset(L, -3);
      } else if (code === "@") {
        at = Math.max(0, count <= len ? count : at); // PHP warns when outside the string
        break;
      } else if (code !== "x" && code !== "X") {
        pushKey(L, key);
        lua.lua_pushnumber(L, readNumber(data, at, code));
        lua.lua_rawset(L, -3);
      }
      at = Math.max(0, at + size); // as PHP, H* (size -1) steps back one byte
    }
  }
  return 1;
}

export const codec: LuaFamily = {
  name: "codec",
  lua: codecLua,
  functions: {
    base64_encode: guarded("base64_encode", (L) => {
      const data = bytesArg(L, 1, "base64_encode");
      if (!data) return 2;
      pushString(L, data.toString("base64"));
      return 1;
    }),
    base64_decode: guarded("base64_decode", base64Decode),
    md5: guarded("md5", digest(Bun.MD5, true)),
    md5_bin: guarded("md5_bin", digest(Bun.MD5, false)),
    sha1: guarded("sha1", digest(Bun.SHA1, true)),
    sha1_bin: guarded("sha1_bin", digest(Bun.SHA1, false)),
    php_pack: pack,
    php_unpack: guarded("php_unpack", unpack),
  },
};
