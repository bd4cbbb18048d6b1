// Edge cases found in review: script results the engine must survive (an out-of-range refusal status,
// a fractional protocol_input length), and Lua state that must not outlive a connection.
import { afterAll, describe, expect, test } from "bun:test";
import { appendFileSync } from "node:fs";
import WS from "ws";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { Client } from "../helpers/ws.ts";
import { startServer, TcpClient } from "./helpers";
import { TcpConnection } from "../../src/engine/connection";

const readLog = captureLog();
afterAll(cleanupAll);

/** Status of a refused upgrade, as the `ws` client sees it. */
function refusedStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WS(url, { headers });
    ws.on("open", () => reject(new Error("upgrade was accepted")));
    ws.on("error", () => {});
    ws.on("unexpected-response", (_req, res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode!));
    });
  });
}

describe("on_handshake", () => {
  test("a refusal with a status outside 200-599 is refused with 403; the server keeps serving", async () => {
    const s = await startServer(`
      function on_handshake(id, headers) local st = headers["X-Status"]
        if st then return false, tonumber(st), "no" end end
      function on_message(msg, conn) conn:send("echo " .. msg.data) end
    `);
    expect(await refusedStatus(s.url, { "X-Status": "99" })).toBe(403);
    expect(await refusedStatus(s.url, { "X-Status": "1000" })).toBe(403);
    expect(await refusedStatus(s.url, { "X-Status": "401" })).toBe(401);
    const c = await Client.open(s.url);
    c.send("hi");
    await until(() => c.received.length === 1);
    expect(c.received[0]).toBe("echo hi");
    expect(s.engine.node.connections.size).toBe(1);
  });

  test("a handshake that fails leaves no connection object behind in Lua", async () => {
    const s = await startServer(`
      seen = setmetatable({}, { __mode = "k" })
      function on_handshake(id, headers, server, conn)
        seen[conn] = true
        if headers["X-Fail"] then error("refused by error") end
      end
      function on_message(msg, conn)
        collectgarbage("collect") collectgarbage("collect")
        local n = 0 for _ in pairs(seen) do n = n + 1 end
        conn:send(tostring(n))
      end
    `);
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve) => {
        const ws = new WS(s.url, { headers: { "X-Fail": "1" } });
        ws.on("error", () => {});
        ws.on("unexpected-response", (_req, res) => { res.resume(); res.on("end", () => resolve()); });
      });
    }
    const c = await Client.open(s.url);
    c.send("count");
    await until(() => c.received.length === 1);
    expect(c.received[0]).toBe("1"); // only the open connection itself
    expect(readLog()).toContain("refused by error");
  });
});

describe("protocol_input", () => {
  test("a length that is not a whole number closes the connection with an ERROR line instead of spinning", async () => {
    const s = await startServer(`
      function protocol_input(buf) local s = buf:tostring()
        if s:sub(1, 4) == "half" then return 0.5 end
        if s:sub(1, 3) == "nan" then return 0/0 end
        local nl = s:find("\\n", 1, true) return nl or 0 end
      function on_message(msg, conn) conn:send("got " .. msg) end
    `, { protocol: "socket" });
    for (const bad of ["half\n", "nan\n"]) {
      const c = await TcpClient.connect(s.port);
      c.write("ok\n");
      await until(() => c.text() === "got ok\n");
      const t0 = performance.now();
      c.write(bad);
      await c.waitClosed();
      expect(performance.now() - t0).toBeLessThan(1000); // not stopped by the 1 s runaway guard
    }
    expect(readLog()).toContain("protocol_input returned 0.5");
    expect(readLog()).not.toContain("time budget");
  });
});

describe("wait_context_value", () => {
  test("two callbacks waiting on one connection's context are both released", async () => {
    const s = await startServer(`
      local byname = {}
      function on_message(msg, conn)
        local cmd, name = msg.data:match("^(%w+) (%w+)$")
        if cmd == "me" then byname[name] = conn conn:send("ok") return end
        local v = byname[name]:wait_context_value("k")
        conn:send("woke " .. tostring(v))
      end
    `);
    const b = await Client.open(s.url);
    b.send("me b");
    await until(() => b.received.length === 1);
    const a = await Client.open(s.url);
    b.send("wait b"); // b waits on its own context
    await Bun.sleep(20);
    a.send("wait b"); // a waits on b's context too
    await Bun.sleep(20);
    const bId = [...s.engine.node.connections.keys()][0]!;
    expect(s.engine.node.callLocal(bId, "set_context_value", ["k", "v"])).toBeNull();
    await until(() => a.received.length === 1 && b.received.length === 2, 2000, "both woken");
    expect([a.received[0], b.received[1]]).toEqual(["woke v", "woke v"]);
  });
});

describe("readTimeout", () => {
  test("an on_handshake that waits past readTimeout: the connection still times out once open, counted from the upgrade", async () => {
    const s = await startServer(`
      function on_handshake(id, headers, server, conn) conn:wait_context_value("go") end
      function on_close(id, err) last_err = err end
    `, { readTimeout: 0.5 });
    const opening = Client.open(s.url);
    await until(() => s.engine.node.connections.size === 1);
    await Bun.sleep(1100); // more than twice readTimeout, 11 sweeps, while the handshake waits
    const id = [...s.engine.node.connections.keys()][0]!;
    expect(s.engine.node.callLocal(id, "set_context_value", ["go", true])).toBeNull();
    const c = await opening;
    const opened = Date.now();
    await until(() => c.closed !== null, 4000, "read timeout close");
    expect(c.closed).toEqual({ code: 1001, reason: "read timeout" });
    expect(Date.now() - opened).toBeGreaterThanOrEqual(400);
  }, 10_000);
});

describe("nested values between JS and Lua", () => {
  test("deep tables cross without overflowing Lua's stack (99 levels crashed the engine)", async () => {
    const s = await startServer(`
      function on_message(msg, conn)
        if msg.data == "http" then
          local deep = "x"
          for i = 1, 99 do deep = { deep } end
          local resp, err = mix.http.request("GET", "http://127.0.0.1:1/", { headers = { X = deep }, timeout = 1 })
          return conn:send("http " .. tostring(err ~= nil))
        end
        local v, d = conn:context_value("k"), 0
        while type(v) == "table" do v = v[1] d = d + 1 end
        conn:send("depth " .. d .. " " .. tostring(v))
      end
    `);
    const c = await Client.open(s.url);
    const id = [...s.engine.node.connections.keys()][0]!;
    const nested = (n: number) => { let v: unknown = "x"; for (let i = 0; i < n; i++) v = [v]; return v; };
    expect(s.engine.node.callLocal(id, "set_context_value", ["k", nested(99)])).toBeNull();
    c.send("depth");
    await until(() => c.received.length === 1);
    expect(c.received[0]).toBe("depth 99 x");
    // Deeper than the limit: a clear error for the API caller, and the Lua state stays balanced.
    for (let i = 0; i < 500; i++) expect(s.engine.node.callLocal(id, "set_context_value", ["k", nested(150)])).toBe("value nested too deeply for Lua");
    c.send("depth");
    await until(() => c.received.length === 2);
    expect(c.received[1]).toBe("depth 99 x");
    c.send("http");
    await until(() => c.received.length === 3, 5000);
    expect(c.received[2]).toBe("http true");
  });
});

describe("wait_context_value on different keys", () => {
  test("a change that releases one waiter leaves another, waiting on another key, waiting (not 'closed')", async () => {
    const s = await startServer(`
      local byname = {}
      function on_message(msg, conn)
        local cmd, name, key = msg.data:match("^(%w+) (%w+) ?(%w*)$")
        if cmd == "me" then byname[name] = conn conn:send("ok") return end
        if cmd == "close" then return conn:send("close " .. tostring(byname[name]:close())) end
        local v, err = byname[name]:wait_context_value(key)
        conn:send("woke " .. tostring(v) .. " " .. tostring(err))
      end
    `);
    const b = await Client.open(s.url);
    b.send("me b");
    await until(() => b.received.length === 1);
    const a = await Client.open(s.url);
    b.send("wait b k1");
    await Bun.sleep(20);
    a.send("wait b k2");
    await Bun.sleep(20);
    const bId = [...s.engine.node.connections.keys()][0]!;
    expect(s.engine.node.callLocal(bId, "set_context_value", ["k2", "two"])).toBeNull();
    await until(() => a.received.length === 1, 2000, "a woken");
    expect(a.received[0]).toBe("woke two nil");
    await Bun.sleep(50);
    expect(b.received.length).toBe(1); // still waiting for k1
    expect(s.engine.node.callLocal(bId, "set_context_value", ["k1", "one"])).toBeNull();
    await until(() => b.received.length === 2, 2000, "b woken");
    expect(b.received[1]).toBe("woke one nil");
  });
});

describe("protocol_input that fails", () => {
  test("a protocol_input that raises on every read does not buffer without bound: past the limit the connection is closed", async () => {
    const s = await startServer(`
      function protocol_input(buf) error("cannot parse " .. buf:length() .. " bytes") end
    `, { protocol: "socket" });
    const c = await TcpClient.connect(s.port);
    const chunk = Buffer.alloc(64 * 1024, 120);
    for (let i = 0; i < 40 && !c.closed; i++) { // 2.5 MB, more than the 1 MiB framing limit
      c.write(chunk);
      await Bun.sleep(5);
    }
    await c.waitClosed();
    expect(readLog()).toContain("without a complete package; closing");
  });
});

describe("error objects", () => {
  test("an error object's __tostring may use mix while its traceback is built", async () => {
    const s = await startServer(`
      function protocol_input(buf) return buf:length() end
      function on_message(msg, conn)
        error(setmetatable({}, { __tostring = function() return "failed with " .. tostring(mix.server.option("color")) end }))
      end
    `, { protocol: "socket", options: [{ name: "color", value: "blue" }] });
    const c = await TcpClient.connect(s.port);
    c.write("x");
    await until(() => readLog().includes("failed with blue"), 3000, "the error text in the log");
  });
});

describe("closing a socket connection with bytes queued", () => {
  test("bytes still queued for a slow reader are written before the connection ends", async () => {
    const s = await startServer(`function protocol_input(buf) return buf:length() end`, { protocol: "socket" });
    const c = await TcpClient.connect(s.port, { read: false });
    await until(() => s.engine.node.connections.size === 1);
    const [id, conn] = [...s.engine.node.connections.entries()][0] as [number, TcpConnection];
    expect(conn).toBeInstanceOf(TcpConnection);
    const piece = Buffer.alloc(256 * 1024, 121);
    let sent = 0;
    while (conn.pendingBytes === 0 && sent < 64 * 1024 * 1024) {
      expect(s.engine.node.sendLocal(id, piece, 2, true)).toBeNull();
      sent += piece.length;
    }
    expect(conn.pendingBytes).toBeGreaterThan(0);
    expect(s.engine.node.sendLocal(id, "END", 1, true)).toBeNull();
    sent += 3;
    expect(s.engine.node.close(id)).toBeNull();
    let total = 0;
    let tail = "";
    await new Promise<void>((resolve) => {
      c.socket.reload({ socket: {
        data: (_s, chunk) => { total += chunk.length; tail = (tail + chunk.toString("latin1")).slice(-3); },
        close: () => resolve(),
        error: () => resolve(),
      } });
      c.socket.resume();
    });
    expect(total).toBe(sent);
    expect(tail).toBe("END");
  });
});

describe("hot reload", () => {
  test("editing the entry keeps the live connections of a protocol module working (its state survives)", async () => {
    const s = await startServer(`
      local websocket = require("protocols.websocket")
      protocol_input, protocol_decode, protocol_encode = websocket.input, websocket.decode, websocket.encode
      function on_message(msg, conn) websocket.send(conn, "echo " .. msg.data) end
    `, { protocol: "socket", byteCodeExpires: 1 });
    const c = await Client.open(s.url);
    c.send("one");
    await until(() => c.received.length === 1);
    appendFileSync(s.config.engine.servers[0]!.entry, "\n-- edited\n");
    await until(() => readLog().includes("lua code reloaded"), 4000, "the reload");
    c.send("two");
    await until(() => c.received.length === 2, 3000, "the echo after the reload");
    expect(c.received).toEqual(["echo one", "echo two"]);
  });
});

describe("conn:close() inside on_handshake", () => {
  test("the upgrade completes, what the script sent arrives, then the connection closes with 1000", async () => {
    const s = await startServer(`
      function on_handshake(id, headers, server, conn)
        conn:send("bye before open")
        conn:close()
      end
      function on_message(msg, conn) conn:send("should not run") end`);
    const c = await Client.open(s.url);
    expect((await c.waitClosed(3000)).code).toBe(1000);
    expect(c.received).toEqual(["bye before open"]);
  });
});

describe("sends during on_handshake", () => {
  test("are held until the upgrade, up to a bound; past it conn:send returns an error", async () => {
    const s = await startServer(`
      local results = {}
      function on_handshake(id, headers, server, conn)
        local chunk = string.rep("x", 256 * 1024)
        local sent, err = 0, nil
        for i = 1, 6 do
          err = conn:send(chunk)
          if err then break end
          sent = sent + 1
        end
        results[id] = "held " .. sent .. " then: " .. tostring(err)
      end
      function on_message(msg, conn) conn:send(results[conn:client_id()]) end`);
    const c = await Client.open(s.url);
    const held = [await c.next(), await c.next(), await c.next(), await c.next()];
    expect(held.map((m) => m.length)).toEqual([1 << 18, 1 << 18, 1 << 18, 1 << 18]);
    expect(await c.ask("result?")).toBe("held 4 then: send failed: too much data before the upgrade completed");
  });
});
