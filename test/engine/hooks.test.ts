// The hooks the engine calls in Lua (src/engine/mix/contract.ts) are kept by reference, not looked up as
// globals: a script that overwrites or clears every name they once had (__connmix_*) changes nothing.
import { afterAll, describe, expect, test } from "bun:test";
import { CONTEXT } from "../../src/engine/mix/contract.ts";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { Client } from "../helpers/ws.ts";
import { startServer, TcpClient } from "./helpers";

const readLog = captureLog();
afterAll(cleanupAll);

// Clobbers the old global names with functions that fail loudly, at load and again in every callback.
const CLOBBER = `
local names = { "failed", "forget", "conn_call", "context", "encode", "decoded", "init", "callback_dumps", "set_convention" }
function clobber(value)
  for _, n in ipairs(names) do _G["__connmix_" .. n] = value end
end
clobber(function() error("the script's replacement was called") end)
`;

describe("hooks a script cannot replace", () => {
  test("websocket: init, the 1.0.1 convention, a refused upgrade, a failed callback and conn.call work with every __connmix_ name overwritten or cleared", async () => {
    const s = await startServer(CLOBBER + `
      function init() inits = (inits or 0) + 1 end
      function on_handshake(headers, conn)               -- 1.0.1: headers first, conn last
        clobber(nil)
        if headers["X-Refuse"] then refused = conn:client_id() return false, 401, "no" end
      end
      function on_message(msg, conn)
        clobber(function() error("the script's replacement was called") end)
        if msg.data == "fail" then error("boom") end
        conn:send("echo " .. msg.data .. " inits " .. tostring(inits) .. " ctx " .. tostring(conn:context_value("k")))
      end
      function on_close(err, conn) end
      function refused_id() return refused end
    `);
    const server = s.engine.servers[0]!;
    expect(server.convention).toBe("1.0.1"); // callback_dumps and set_convention ran

    await expect(Client.open(s.url, { headers: { "X-Refuse": "1" } })).rejects.toThrow();
    await until(() => server.vm.callGlobal("refused_id", []) !== null);
    expect(server.vm.call(CONTEXT, server.vm.callGlobal("refused_id", []) as number)).toBeNull(); // forget dropped its connection object

    const c = await Client.open(s.url);
    c.send("fail");
    await until(() => readLog().includes("boom"));
    const id = [...s.engine.node.connections.keys()][0]!;
    expect(s.engine.node.callLocal(id, "set_context_value", ["k", "v"])).toBeNull();
    c.send("hi");
    await c.waitFor(1);
    expect(c.received).toEqual(["echo hi inits 1 ctx v"]);
    expect(server.vm.call(CONTEXT, id)).toEqual({ k: "v" });
    expect(readLog()).not.toContain("replacement was called");
  });

  test("socket: protocol_encode of pushed data and the decoded count work with every __connmix_ name overwritten", async () => {
    const s = await startServer(CLOBBER + `
      function protocol_input(buf) local nl = buf:tostring():find("\\n", 1, true) return nl or 0 end
      function protocol_decode(pkg) return pkg:sub(1, -2) end
      function protocol_encode(data, conn, kind) return "<" .. kind .. " " .. data .. ">" end
      function on_message(msg, conn) clobber(nil) conn:send("got " .. msg .. "\\n") end
    `, { protocol: "socket" });
    const c = await TcpClient.connect(s.port);
    c.write("a\nb\n");
    await until(() => c.text() === "got a\ngot b\n");
    const id = [...s.engine.node.connections.keys()][0]!;
    expect(s.engine.node.sendLocal(id, "pushed", 1)).toBeNull();
    await until(() => c.text().endsWith("<text pushed>"));
    expect(s.engine.servers[0]!.decodedMessages()).toBe(2);
    expect(readLog()).not.toContain("replacement was called");
  });
});
