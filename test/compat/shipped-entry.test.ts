// connmix's docs' examples (message centre, barrage, exchange stream) say "replace on_message in
// entry.websocket.lua with this": their code logs through the mix_log and mix_DEBUG locals that connmix's
// own entry files define at the top. Ours define them too, so such an on_message runs in either shipped
// entry, error paths included.
import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { TcpClient } from "../engine/helpers.ts";
import { startEngine, luaRoot } from "../helpers/engine.ts";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { Client } from "../helpers/ws.ts";

afterEach(cleanupAll);

const LUA = join(import.meta.dir, "..", "..", "lua");

/** The shipped entry `name` with its on_message replaced by `onMessage`, as a user following the docs edits it. */
function edited(name: string, onMessage: string): string {
  const shipped = readFileSync(join(LUA, name), "utf8");
  const replaced = shipped.replace(/\nfunction on_message\([^)]*\)\n[\s\S]*?\nend\n/, "\n" + onMessage + "\n");
  expect(replaced).not.toBe(shipped);
  return join(luaRoot({ [name]: replaced }), name);
}

test("entry.websocket.lua: a docs-style on_message logs with mix_log(mix_DEBUG, ...) and closes on bad input", async () => {
  const logText = captureLog();
  const entry = edited("entry.websocket.lua", `function on_message(msg)
  local conn = mix.websocket()
  local data, err = mix.json_decode(msg["data"])
  if err then
    mix_log(mix_DEBUG, "bad frame: " .. err)
    conn:close()
    return
  end
  local parts = mix.str_split(data["channel"] or "", "@")
  if table.getn(parts) ~= 2 then
    mix_log(mix_DEBUG, "bad channel: " .. tostring(data["channel"]))
    conn:close()
    return
  end
  conn:subscribe("video:" .. parts[1])
  conn:send('{"result":true}')
end`);
  const s = await startEngine(entry);
  const ok = await Client.open(s.url);
  expect(await ok.ask({ op: "subscribe", channel: "7@video" })).toBe('{"result":true}');
  const bad = await Client.open(s.url);
  bad.send({ op: "subscribe", channel: "novideo" });
  await bad.waitClosed();
  const notJson = await Client.open(s.url);
  notJson.send("{");
  await notJson.waitClosed();
  const log = logText();
  expect(log).toMatch(/\tDEBUG\t.*bad channel: novideo/);
  expect(log).toMatch(/\tDEBUG\t.*bad frame: /);
  expect(log).not.toMatch(/\tERROR\t/);
});

test("entry.socket.lua: mix_log and mix_DEBUG are there too", async () => {
  const logText = captureLog();
  const entry = edited("entry.socket.lua", `function on_message(line, conn)
  mix_log(mix_DEBUG, "line: " .. line)
  text.send(conn, "got " .. line)
end`);
  const s = await startEngine(entry, { server: { protocol: "socket" } });
  const c = await TcpClient.connect(s.port);
  c.write("hello\n");
  expect((await c.lines(2))[1]).toBe("got hello");
  expect(logText()).toMatch(/\tDEBUG\t.*line: hello/);
});
