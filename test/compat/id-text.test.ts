// Client ids print exactly in Lua (real Lua 5.1 turns numbers into text with %.14g): the largest node
// index and worker give the largest id, which must still come out digit for digit.
import { afterEach, expect, test } from "bun:test";
import { defaultConfig, defaultServer } from "../../src/config/index.ts";
import { startLuaServers } from "../../src/engine/servers.ts";
import { MAX_NODE, MAX_WORKER, parseClientId } from "../../src/net/client-ids.ts";
import { cleanupAll, onCleanup } from "../helpers/files.ts";
import { luaRoot } from "../helpers/engine.ts";
import { freePort } from "../helpers/ports.ts";
import { Client } from "../helpers/ws.ts";

afterEach(cleanupAll);

const ENTRY = `
seen = {}
function on_message(msg, conn)
  local id = conn:client_id()
  seen[id] = true
  local key = next(seen)
  conn:send(table.concat({ tostring(id), "" .. id, string.format("%d", id), tostring(key) }, " "))
end`;

test("the largest id (node 1023, worker 31) prints the same digits through tostring, .., %d and as a table key", async () => {
  const port = freePort();
  const config = defaultConfig();
  config.engine.servers = [{ ...defaultServer(), bind: "127.0.0.1", port, options: [{ name: "path", value: "/chat" }], entry: luaRoot({ "e.lua": ENTRY }) + "/e.lua", byteCodeExpires: 0 }];
  const engine = await startLuaServers(config, MAX_NODE, MAX_WORKER);
  onCleanup(() => engine.stop());
  const c = await Client.open(`ws://127.0.0.1:${port}/chat`);
  const [a, b, d, k] = (await c.ask("x")).split(" ");
  const expected = MAX_NODE * 2 ** 36 + MAX_WORKER * 2 ** 31 + 1;
  expect([a, b, d, k]).toEqual([String(expected), String(expected), String(expected), String(expected)]);
  expect(expected).toBeLessThan(1e14);
  expect(parseClientId(String(expected))).toBe(expected);
  expect(parseClientId(2 ** 46)).toBeNull(); // past the largest id
});
