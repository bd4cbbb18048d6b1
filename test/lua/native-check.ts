// Run by native.test.ts in a child process, so that each run loads the native C afresh under its own
// environment (CONNMIX_NATIVE, PATH) and checkout: a Lua echo callback, a JSON round trip, the memory limit
// and the runaway guard, through the engine's own families. Prints what it saw as one JSON line on stdout;
// the engine's log goes to stderr.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nativeBuild, nativeNotes } from "../../native/compile.ts";
import { log } from "../../src/log/logger.ts";
import { LuaVM } from "../../src/lua/vm.ts";
import { engineFamilies } from "../../src/engine/mix/index.ts";
import { websocketEvents } from "../../src/engine/mix/connection.ts";
import { EV } from "../../src/engine/mix/contract.ts";
import type { EngineHost } from "../../src/engine/host.ts";

log.configure({ fd: 2 });
const ENTRY = `
function on_message(msg, conn)
  local d = msg.data
  if d == "loop" then while true do end end
  if d == "grow" then -- 64 KiB strings kept until limited_alloc refuses one
    local ok, err = pcall(function() local t, s = {}, string.rep("y", 65536) for i = 1, 1e6 do t[i] = s .. i end end)
    return conn:send(tostring(err))
  end
  if d:sub(1, 1) == "{" then return conn:send(mix.json_encode(mix.json_decode(d))) end
  conn:send(d)
end
`;
const BUDGET_MS = 200;

const sent: string[] = [];
// The only host calls this entry makes: its options, and the send of its replies.
const host = { option: () => undefined, sendLocal: (_id: number, data: string | Uint8Array) => (sent.push(String(data)), null) } as unknown as EngineHost;
const dir = mkdtempSync(join(tmpdir(), "connmix-native-check-"));
process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
const entry = join(dir, "entry.lua");
writeFileSync(entry, ENTRY);
const vm = new LuaVM({ entry, families: [...engineFamilies, websocketEvents], host, budgetMs: BUDGET_MS, memoryLimit: 16 << 20 });
const id = 2 ** 36 + 1;
const owner = { busy: false, backlog: null, backlogBytes: 0, replies: true }; // an open connection: replies may be kept in C
const message = (data: string) => vm.scheduler.dispatch(owner, EV.message, id, data, 1);
vm.scheduler.dispatch(owner, EV.open, id, { addr: "127.0.0.1:1" });

message("hello");
message('{"a":[1,2.5,"x"]}');
const started = performance.now();
message("loop");
const loopMs = performance.now() - started;
message("after the loop");
message("grow");
console.log(JSON.stringify({ build: nativeBuild(), notes: nativeNotes(), sent, loopStopped: loopMs >= BUDGET_MS * 0.9 }));
