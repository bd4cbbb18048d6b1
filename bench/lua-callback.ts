// JS -> Lua on_message(msg) -> conn:send -> JS, in one process, no network: the cost of the Lua path per
// frame, step by step, in CPU time (process.cpuUsage, so other processes on the machine count less).
//   bun bench/lua-callback.ts [--count 200000] [--rounds 9] [--baseline /other/checkout]
// --baseline loads the runtime of another checkout (e.g. a commit before a change) into the same process;
// rounds alternate between the checkouts, and each step's median is printed.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { arg, median, option } from "./lib";
import { ROOT } from "../test/helpers/process.ts";

const count = arg("count", 200_000);
const rounds = arg("rounds", 9);
const baseline = option("baseline");
const roots = baseline ? [ROOT, baseline] : [ROOT];
const payload = '{"op":"send","msg":"hello world","room_id":1002}';
const steps = {
  "dispatch and resume, no on_message": "",
  "+ the msg table and on_message": "function on_message(msg, conn) end\n",
  "+ conn:send(msg.data)": "function on_message(msg, conn) conn:send(msg.data) end\n",
  // the Lua-heavy benchmark's JSON work (bench/chat/connmix.lua), without its publish
  "json_decode, json_encode, conn:send": "function on_message(msg, conn)\n" +
    "  local t = mix.json_decode(msg.data)\n" +
    "  conn:send(mix.json_encode({ status = 'success', op = t.op, room = t.room_id }))\nend\n",
};

let sent = 0;
// The only host calls these scripts make.
const host = { option: () => undefined, sendLocal: (_id: number, data: string | Uint8Array) => ((sent += data.length), null) };
const runs: { root: string; step: string; run: () => void; ns: number[] }[] = [];
for (const root of roots) {
  const { LuaVM } = await import(join(root, "src/lua/vm.ts"));
  // The families moved from src/lua/api to src/engine/mix: a baseline checkout may have either.
  const mix = join(root, existsSync(join(root, "src/engine/mix")) ? "src/engine/mix" : "src/lua/api");
  const { engineFamilies } = await import(join(mix, "index.ts"));
  const { websocketEvents } = await import(join(mix, "connection.ts"));
  const { EV } = await import(join(mix, existsSync(join(mix, "contract.ts")) ? "contract.ts" : "connection.ts"));
  for (const [step, source] of Object.entries(steps)) {
    const entry = join(mkdtempSync(join(tmpdir(), "connmix-bench-")), "entry.lua");
    writeFileSync(entry, source);
    const { scheduler } = new LuaVM({ entry, families: [...engineFamilies, websocketEvents], host });
    const id = 2 ** 36 + 1;
    const owner = { busy: false, backlog: null, replies: true }; // an open connection: its replies may be kept in C
    scheduler.dispatch(owner, EV.open, id, { addr: "127.0.0.1:1" });
    runs.push({ root, step, ns: [], run: () => { for (let i = 0; i < count; i++) scheduler.dispatch(owner, EV.message, id, payload, 1); } });
  }
}
for (const r of runs) r.run(); // warm-up
for (let round = 0; round < rounds; round++) {
  for (const r of runs) {
    const before = process.cpuUsage();
    r.run();
    const used = process.cpuUsage(before);
    r.ns.push(((used.user + used.system) * 1000) / count);
  }
}
const rows = runs.map((r) => ({ root: r.root, step: r.step, ns: Math.round(median(r.ns)) }));
for (const row of rows) {
  console.error(`${row.root === ROOT ? "this" : "baseline"}  ${row.step.padEnd(36)} ${String(row.ns).padStart(5)} ns  ${Math.round(1e9 / row.ns).toLocaleString("en-US")} /s`);
}
const perS = (root: string, step: string) => Math.round(1e9 / rows.find((r) => r.root === root && r.step.startsWith(step))!.ns);
const full = (root: string) => perS(root, "+ conn:send");
const json = (root: string) => perS(root, "json_decode");
console.log(JSON.stringify({
  bench: "lua-callback", count, rounds, lua_callbacks_per_s: full(ROOT), json_callbacks_per_s: json(ROOT),
  ...(roots[1] ? { baseline_callbacks_per_s: full(roots[1]), baseline_json_callbacks_per_s: json(roots[1]) } : {}), sent_bytes: sent,
}));
