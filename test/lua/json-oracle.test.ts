// mix.json_encode / mix.json_decode (C, native/json.c) checked against JavaScript's own JSON and Number#toString
// on many generated values: the number formatting the docs promise (shortest round-trip digits, laid out as
// JS does), strings byte for byte, structures through a decode/encode round trip, and the exact error messages.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { LuaVM } from "../../src/lua/vm";
import { json } from "../../src/engine/mix/json";
import { writeTree } from "../helpers/files.ts";

const ENTRY = String.raw`
function encode_each(values)
  local out = {}
  for i, v in ipairs(values) do out[i] = mix.json_encode(v) end
  return out
end
-- decoded numbers come back as they are; bad documents as their error
function decode_each(docs)
  local out = {}
  for i, d in ipairs(docs) do
    local v, err = mix.json_decode(d)
    out[i] = err or v
  end
  return out
end
function round_trip_each(docs)
  local out = {}
  for i, d in ipairs(docs) do
    local v, err = mix.json_decode(d)
    out[i] = err or mix.json_encode(v)
  end
  return out
end
function results(code) return { assert(loadstring(code))() } end
`;

const vm = new LuaVM({ entry: join(writeTree({ "entry.lua": ENTRY }), "entry.lua"), families: [json], budgetMs: 60_000, host: undefined });
const call = (name: string, arg: unknown) => vm.callGlobal(name, [arg as never]) as unknown[];

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), seed | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function numbers(count: number, random: () => number): number[] {
  const view = new DataView(new ArrayBuffer(8));
  const special = [0, -0, 0.1, 0.2, 0.1 + 0.2, 1 / 3, 2 ** 53, 2 ** 53 - 1, 2 ** 53 + 2, -(2 ** 53), 2 ** 63, 2 ** 64, 1e21,
    1e21 - 65536, 999999999999999900000, 1e-6, 1e-7, 1.5e-7, 5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
    1.7976931348623157e308, 6.083493012144512e-210, 123e-20, 4.35, 1e15, 1e16, 1e17, 1.1e16, 1700000123.25, -273.15];
  const out = [...special];
  while (out.length < count) {
    const kind = out.length % 5;
    let v: number;
    if (kind === 0) { // any bit pattern
      view.setUint32(0, (random() * 2 ** 32) >>> 0);
      view.setUint32(4, (random() * 2 ** 32) >>> 0);
      v = view.getFloat64(0);
    } else if (kind === 1) v = Number((random() * 10 ** Math.floor(random() * 30 - 10)).toPrecision(1 + Math.floor(random() * 17)));
    else if (kind === 2) v = 2 ** Math.floor(random() * 2098 - 1074) * (random() < 0.5 ? -1 : 1); // powers of two, subnormals
    else if (kind === 3) v = Math.floor(random() * 2 ** Math.floor(random() * 80)) * (random() < 0.5 ? -1 : 1);
    else { // just below and above a power of two, where the spacing of doubles changes
      view.setFloat64(0, 2 ** Math.floor(random() * 2000 - 1000));
      view.setBigUint64(0, view.getBigUint64(0) + BigInt(Math.floor(random() * 5) - 2));
      v = view.getFloat64(0);
    }
    if (Number.isFinite(v)) out.push(v);
  }
  return out;
}

function randomString(random: () => number): string {
  const pieces = ["a", "Z", " ", '"', "\\", "/", "\n", "\t", "\b", "\f", "\r", "\0", "\x01", "\x1f", "\x7f", "é", "\u2028",
    "你好", "😀", "\ud800", "\udc00", "\uffff"];
  let s = "";
  for (let i = Math.floor(random() * 8); i > 0; i--) s += pieces[Math.floor(random() * pieces.length)];
  return s;
}

function randomValue(random: () => number, depth: number): unknown {
  const kind = Math.floor(random() * (depth > 4 ? 4 : 7));
  if (kind === 0) return randomString(random);
  if (kind === 1) return numbers(33, random)[32];
  if (kind === 2) return random() < 0.5 ? null : random() < 0.5;
  if (kind === 3) return Math.floor(random() * 2000) - 1000;
  const n = Math.floor(random() * 6);
  if (kind === 4) return Array.from({ length: n }, () => randomValue(random, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) o[random() < 0.2 ? String(i + 1) : randomString(random)] = randomValue(random, depth + 1);
  return o;
}

/** What a decode/encode round trip keeps: nulls in objects are left out, lone surrogates become U+FFFD. */
function kept(v: unknown): unknown {
  if (typeof v === "string") return v.toWellFormed();
  if (Array.isArray(v)) return v.map(kept);
  if (v === null || typeof v !== "object") return v;
  // an object whose every member was null decodes to an empty table with the object marker: {}
  const entries = Object.entries(v).filter(([, x]) => x !== null);
  return Object.fromEntries(entries.map(([k, x]) => [k.toWellFormed(), kept(x)]));
}

/** The JSON text with every non-ASCII character written as a \uXXXX escape (upper or lower case hex). */
const escaped = (text: string, upper: boolean) =>
  text.replace(/[\u007f-\uffff]/g, (c) => {
    const hex = c.charCodeAt(0).toString(16).padStart(4, "0");
    return "\\u" + (upper ? hex.toUpperCase() : hex);
  });

describe("json against JavaScript", () => {
  test("numbers encode exactly as Number#toString does and decode back to the same double (20,000 values)", () => {
    const values = numbers(20_000, prng(1));
    const encoded = call("encode_each", values);
    const wrong = values.map((v, i) => [v, encoded[i]]).filter(([v, s]) => s !== JSON.stringify(v));
    expect(wrong.slice(0, 5)).toEqual([]);
    const decoded = call("decode_each", values.map((v) => JSON.stringify(v)));
    expect(values.filter((v, i) => !Object.is(decoded[i], v === 0 ? 0 : v)).slice(0, 5)).toEqual([]);
    // the same numbers written with exponents and extra zeros read back the same
    const spelled = values.map((v) => {
      const [digits, exponent] = v.toExponential().split("e");
      return (digits!.includes(".") ? digits + "0" : digits + ".0") + "E" + exponent;
    });
    expect(call("decode_each", spelled).filter((d, i) => d !== (values[i] === 0 ? 0 : values[i])).slice(0, 5)).toEqual([]);
  });

  test("strings encode byte for byte as JSON.stringify does", () => {
    const random = prng(2);
    const strings = Array.from({ length: 5000 }, () => randomString(random).toWellFormed());
    const encoded = call("encode_each", strings);
    expect(strings.filter((s, i) => encoded[i] !== JSON.stringify(s)).slice(0, 5)).toEqual([]);
  });

  test("values decode and encode back to what JSON.parse reads, with or without \\u escapes (3,000 documents)", () => {
    const random = prng(3);
    const values = Array.from({ length: 3000 }, () => randomValue(random, 0));
    const texts = values.map((v) => JSON.stringify(v));
    for (const docs of [texts, texts.map((t, i) => escaped(t, i % 2 === 0))]) {
      const back = call("round_trip_each", docs);
      const wrong = values.filter((v, i) => !Bun.deepEquals(JSON.parse(back[i] as string), kept(v)));
      expect(wrong.slice(0, 3)).toEqual([]);
    }
  });

  test("error messages name the problem and its byte offset", () => {
    const docs = ['{"a":1,}', "[1 2]", '"\\ud800\\u12"', "[1,", '["\x01"]', "1e400", "-x", "1.e5", "01", '{"a" 1}', "tru", '"\\q"'];
    expect(call("decode_each", docs)).toEqual([
      "json_decode: expected a string key, found '}' at offset 7",
      "json_decode: expected ',' or ']', found '2' at offset 3",
      "json_decode: invalid \\u escape, found '\"' at offset 11",
      "json_decode: unexpected end of input (expected a value)",
      "json_decode: unescaped control character in string, found byte 0x01 at offset 2",
      "json_decode: number out of range, found '1' at offset 0",
      "json_decode: invalid number, found 'x' at offset 1",
      "json_decode: expected a digit after '.', found 'e' at offset 2",
      "json_decode: expected the end of input, found '1' at offset 1",
      "json_decode: expected ':', found '1' at offset 5",
      "json_decode: expected a value, found 't' at offset 0",
      "json_decode: invalid escape, found 'q' at offset 2",
    ]);
    expect(call("results", `
      local t = {} t[1] = t
      return select(2, mix.json_encode(1/0)), select(2, mix.json_encode({ -1/0 })), select(2, mix.json_encode({ x = 0/0 })),
        select(2, mix.json_encode({ [1/0] = 1 })), select(2, mix.json_encode({ [true] = 1 })),
        select(2, mix.json_encode(newproxy())), select(2, mix.json_encode({ coroutine.create(function() end) })),
        select(2, mix.json_encode(t)), select(2, mix.json_decode()), select(2, mix.json_decode(12))
    `)).toEqual([
      "json_encode: cannot encode Infinity (NaN and infinities have no JSON form)",
      "json_encode: cannot encode -Infinity (NaN and infinities have no JSON form)",
      "json_encode: cannot encode NaN (NaN and infinities have no JSON form)",
      "json_encode: cannot encode Infinity (NaN and infinities have no JSON form)",
      "json_encode: cannot encode a table key of type boolean",
      "json_encode: cannot encode a value of type userdata",
      "json_encode: cannot encode a value of type thread",
      "json_encode: tables nested more than 1000 deep (a cycle?)",
      "json_decode expects a string, got no value",
      "json_decode expects a string, got number",
    ]);
  });

  test("big and deep documents: a 1000-deep mixed nesting, a long string and a wide sparse table", () => {
    const deep = "[".repeat(500) + '{"k":'.repeat(500) + "1" + "}".repeat(500) + "]".repeat(500);
    expect(call("round_trip_each", [deep])[0]).toBe(deep);
    const long = "x\"\n".repeat(300_000);
    expect(call("encode_each", [long])[0]).toBe(JSON.stringify(long));
    expect(call("decode_each", [JSON.stringify(long)])[0]).toBe(long); // unescaped into a growing buffer
    expect(call("results", `
      local t = {}
      for i = 1, 20000, 2 do t[i] = i end
      return mix.json_encode(t)
    `)).toEqual([JSON.stringify(Array.from({ length: 19_999 }, (_, i) => (i % 2 === 0 ? i + 1 : null)))]);
  });
});
