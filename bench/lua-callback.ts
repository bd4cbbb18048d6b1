// JS -> Lua on_message(msg) -> conn:send (a JS function) -> back to JS, in one process, no network.
// Reports callbacks per second next to a bare JS function doing the same bookkeeping.
//   bun bench/lua-callback.ts [count]
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { LuaVM } from "../src/lua/vm";
import { engineFamilies } from "../src/lua/api";
import { EV, websocketEvents } from "../src/lua/api/connection";
import type { EngineHost } from "../src/engine/host";
import type { SerialOwner } from "../src/lua/scheduler";
import { benchDir } from "./lib";

const count = Number(process.argv[2] ?? 1_000_000);
const dir = benchDir();
const entry = join(dir, "entry.lua");
writeFileSync(entry, "function on_message(msg, conn) conn:send(msg.data) end\n");

let sent = 0;
// The only host calls on_message -> conn:send makes.
const host: Pick<EngineHost, "option" | "sendLocal"> = {
  option: () => undefined,
  sendLocal: (_id, data) => { sent += data.length; return null; },
};

const vm = new LuaVM({ entry, families: [...engineFamilies, websocketEvents], host });
const owner: SerialOwner = { busy: false, backlog: null };
const id = 2 ** 36 + 1;
vm.scheduler.dispatch(owner, EV.open, id, { addr: "127.0.0.1:1" });
const payload = '{"op":"send","msg":"hello world","room_id":1002}';

function run(label: string, fn: () => void): number {
  for (let i = 0; i < 10_000; i++) fn();
  const t0 = performance.now();
  for (let i = 0; i < count; i++) fn();
  const perSecond = count / ((performance.now() - t0) / 1000);
  console.log(`${label.padEnd(28)} ${Math.round(perSecond).toLocaleString("en-US")} /s  (${(1e9 / perSecond).toFixed(0)} ns each)`);
  return perSecond;
}

const lua = run("lua on_message -> conn:send", () => vm.scheduler.dispatch(owner, EV.message, id, payload, 1));
const bare = run("bare JS function", () => host.sendLocal(id, payload, 1));
console.log(JSON.stringify({ lua_callbacks_per_s: Math.round(lua), bare_js_per_s: Math.round(bare), sent_bytes: sent }));
