// mix.json_decode/json_encode (C functions, native/json.c) against a pure-Lua codec (codec-json.lua), both called from
// a Lua loop, on a typical chat frame and a ~2 KB nested document. Prints ns per call (CPU time, best of 5).
//   bun bench/codec-json.ts
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LuaVM } from "../src/lua/vm";
import { logging } from "../src/engine/mix/log";
import { json } from "../src/engine/mix/json";
import { benchDir } from "./lib";

const frame = '{"op":"send","msg":"hello world","room_id":1002}';
const users = Array.from({ length: 20 }, (_, i) => ({
  id: 100000 + i, name: `user-${i} 名字`, online: i % 2 === 0, score: i * 1.5, tags: ["a", "bb", "ccc"],
}));
const doc = JSON.stringify({
  op: "room_state",
  room: {
    id: 1002, title: 'General chat "lobby"', created: 1700000000,
    meta: { owner: 100001, limits: { max_users: 500, max_len: 4096 }, flags: [true, false, null] },
  },
  users,
  last: { msg: "line1\nline2", ts: 1700000123.25 },
});

const dir = benchDir();
copyFileSync(join(import.meta.dir, "codec-json.lua"), join(dir, "purejson.lua"));
writeFileSync(join(dir, "entry.lua"), `
local pure = require("purejson")
function bench(impl, op, s, n)
  local decode = impl == "c" and mix.json_decode or pure.decode
  local encode = impl == "c" and mix.json_encode or pure.encode
  local t = assert(decode(s))
  local t0 = os.clock()
  if op == "decode" then for i = 1, n do decode(s) end else for i = 1, n do encode(t) end end
  return (os.clock() - t0) / n * 1e9
end
`);
const vm = new LuaVM({ entry: join(dir, "entry.lua"), families: [logging, json], budgetMs: 0, host: undefined });

console.log(`frame ${Buffer.byteLength(frame)} bytes, document ${Buffer.byteLength(doc)} bytes`);
const results: Record<string, number> = {};
for (const [name, s, n] of [["frame", frame, 200_000], ["2KB", doc, 10_000]] as const) {
  for (const op of ["decode", "encode"]) {
    for (const impl of ["c", "lua"]) {
      const ns = Math.min(...[0, 1, 2, 3, 4].map(() => vm.callGlobal("bench", [impl, op, s, n]) as number));
      results[`${name}_${op}_${impl}_ns`] = Math.round(ns);
      console.log(`${name.padEnd(6)} ${op} ${impl.padEnd(4)} ${Math.round(ns).toLocaleString("en-US").padStart(8)} ns`);
    }
  }
}
console.log(JSON.stringify(results));
