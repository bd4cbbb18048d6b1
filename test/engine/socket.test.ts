// `socket` servers end to end over raw TCP (Bun.connect): the framing contract (protocol_input/decode/
// encode, the buffer object, conn:clear_buffer), lua/protocols/text.lua and jsonrpc.lua, the demo
// lua/entry.socket.lua, data pushed with sendLocal/publishLocal, and mix.server.option.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { luaRoot, type Started } from "../helpers/engine.ts";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { startServer, TcpClient } from "./helpers";

const readLog = captureLog();
afterAll(cleanupAll);
const socketServer = (entry: string, options: { name: string; value: string }[] = []) => startServer(entry, { protocol: "socket", options });

const only = (s: Started) => [...s.engine.node.connections.values()][0]!;

describe("framing contract", () => {
  test("buf:read/position/length/tostring, packages split across and within chunks", async () => {
    // A length-prefixed protocol: 2-byte big-endian length, then the body.
    const s = await socketServer(`
      function protocol_input(buf, conn)
        local before = buf:position()
        local head = buf:read(2)
        if not head then return 0 end
        local n = head:byte(1) * 256 + head:byte(2)
        local body = buf:read(n)
        if not body then return 0 end
        if buf:read(-1) ~= nil or buf:read("x") ~= nil then error("bad read accepted") end
        conn:send(string.format("[in len=%d pos=%d..%d first=%q]", buf:length(), before, buf:position(), buf:tostring():sub(3, 3)))
        return buf:position()
      end
      function protocol_decode(pkg, conn) return pkg:sub(3):upper() end
      function on_message(msg, conn) conn:send("<" .. msg .. ">") end
    `);
    const c = await TcpClient.connect(s.port);
    const frame = (body: string) => Buffer.concat([Buffer.from([0, body.length]), Buffer.from(body)]);
    c.write(Buffer.concat([frame("ab"), frame("cde").subarray(0, 3)])); // one and a bit
    await until(() => c.text().includes("<AB>"));
    c.write(Buffer.concat([frame("cde").subarray(3), frame("f")]));
    await until(() => c.text().includes("<F>"));
    expect(c.text()).toBe(
      '[in len=7 pos=0..4 first="a"]<AB>' + '[in len=8 pos=0..5 first="c"]<CDE>' + '[in len=3 pos=0..3 first="f"]<F>',
    );
  });

  test("a nil decode skips on_message; -1 closes; conn:clear_buffer() drops what is buffered", async () => {
    const s = await socketServer(`
      function protocol_input(buf) local s = buf:tostring()
        if s:sub(1, 4) == "QUIT" then return -1 end
        local nl = s:find("\\n", 1, true) return nl or 0 end
      function protocol_decode(pkg, conn)
        if pkg == "skip\\n" then return nil end
        if pkg == "clear\\n" then conn:clear_buffer() return nil end
        return pkg
      end
      function on_message(msg, conn) conn:send("got " .. msg) end
    `);
    const c = await TcpClient.connect(s.port);
    c.write("a\nskip\nb\nclear\nlost1\nlost2\n");
    await until(() => c.text().includes("got b"));
    c.write("c\n");
    await until(() => c.text().includes("got c"));
    expect(c.text()).toBe("got a\ngot b\ngot c\n");
    c.write("QUIT");
    await c.waitClosed();
  });

  test("an error in on_message loses only its own package; the connection and the rest go on", async () => {
    const s = await socketServer(`
      local text = require("protocols.text")
      protocol_input, protocol_decode = text.input, text.decode
      function on_message(line, conn)
        if line == "boom" then error("boom requested") end
        text.send(conn, "ok " .. line)
      end
    `);
    const c = await TcpClient.connect(s.port);
    c.write("one\nboom\ntwo\n");
    await until(() => c.text().includes("ok one"));
    c.write("three\n"); // the bytes after the failed package are framed when more arrive
    expect(await c.lines(3)).toEqual(["ok one", "ok two", "ok three"]);
    expect(readLog()).toContain("boom requested");
  });

  test("protocol_encode shapes data pushed with sendLocal/publishLocal (type given), conn:send stays raw", async () => {
    const s = await socketServer(`
      function protocol_input(buf) return buf:length() end
      function protocol_encode(data, conn, kind)
        if data == "nothing" then return nil end
        if data == "fail" then error("encode failed on purpose") end
        return "{" .. kind .. ":" .. data .. ":" .. (conn and "conn" or "publish") .. "}"
      end
      function on_message(msg, conn)
        conn:subscribe("news")
        conn:send("raw:" .. msg)
      end
    `);
    const c = await TcpClient.connect(s.port);
    c.write("x");
    await until(() => c.text() === "raw:x");
    const node = s.engine.node;
    const id = only(s).id;
    expect(node.sendLocal(id, "hello", 1)).toBeNull();
    expect(node.sendLocal(id, Buffer.from([1, 2]), 2)).toBeNull();
    expect(node.publishLocal("news", "flash", 1)).toEqual([1, 0]);
    await until(() => c.text().includes("flash"));
    expect(c.received).toEqual(
      Buffer.concat([Buffer.from("raw:x{text:hello:conn}{binary:"), Buffer.from([1, 2]), Buffer.from(":conn}{text:flash:publish}")]),
    );
    expect(node.sendLocal(id, "nothing", 1)).toBe("protocol_encode returned no data");
    expect(node.sendLocal(id, "fail", 1)).toBe("protocol_encode failed");
    expect(node.publishLocal("news", "nothing", 1)).toEqual([0, 1]);
    expect(readLog()).toContain("encode failed on purpose");
  });

  test("mix.server.option and mix.socket.tcp() with the trailing conn argument", async () => {
    const s = await socketServer(`
      function on_connect(id, conn)
        local c, err = mix.socket.tcp()
        local w, werr = mix.websocket()
        conn:send(string.format("%s|%s|%s|%s|%s\\n", tostring(mix.server.option("greeting")),
          tostring(mix.server.option("missing")), tostring(c == conn and c:client_id() == id), tostring(w), werr))
      end
      function protocol_input(buf) return buf:length() end
    `, [{ name: "greeting", value: "hi there" }]);
    const c = await TcpClient.connect(s.port);
    expect(await c.lines(1)).toEqual(["hi there|nil|true|nil|not inside a websocket callback"]);
  });
});

describe("lua/protocols/text.lua", () => {
  const entry = `
    local text = require("protocols.text")
    text.max_line = 16
    protocol_input, protocol_decode, protocol_encode = text.input, text.decode, text.encode
    function on_message(line, conn) text.send(conn, "[" .. line .. "]") conn:subscribe("all") end
    function on_close(id, err) mix.log(mix.INFO, "text client closed " .. tostring(err)) end
  `;

  test("lines with \\n or \\r\\n, split anywhere, empty lines, pushes become lines", async () => {
    const s = await socketServer(entry);
    const c = await TcpClient.connect(s.port);
    c.write("hel");
    await Bun.sleep(20);
    c.write("lo\r\nwor");
    c.write("ld\n\n" + "x".repeat(16) + "\r\n");
    expect(await c.lines(4)).toEqual(["[hello]", "[world]", "[]", `[${"x".repeat(16)}]`]);
    s.engine.node.publishLocal("all", "pushed", 1);
    expect((await c.lines(5))[4]).toBe("pushed");
  });

  test("a line longer than max_line closes the connection with a WARN line", async () => {
    const s = await socketServer(entry);
    const c = await TcpClient.connect(s.port);
    c.write("x".repeat(17) + "\n");
    await c.waitClosed();
    const c2 = await TcpClient.connect(s.port); // no newline at all: closed once too many bytes are buffered
    c2.write("y".repeat(18));
    await c2.waitClosed();
    const log = readLog();
    expect(log).toMatch(/\tWARN\t[^\t]*text\.lua:\d+\tclient \d+ sent a line of more than 16 bytes/);
  });
});

describe("lua/protocols/jsonrpc.lua", () => {
  test("requests reach on_message; results, errors and notifications are lines of JSON", async () => {
    const s = await socketServer(`
      local jsonrpc = require("protocols.jsonrpc")
      protocol_input, protocol_decode, protocol_encode = jsonrpc.input, jsonrpc.decode, jsonrpc.encode
      function on_message(req, conn)
        if req.method == "add" then return jsonrpc.result(conn, req.id, req.params[1] + req.params[2]) end
        if req.method == "subscribe" then conn:subscribe(req.params.channel) return jsonrpc.result(conn, req.id, true) end
        if req.method == "hello" then return conn:send(jsonrpc.notification("welcome", { who = req.params[1] })) end
        jsonrpc.error(conn, req.id, jsonrpc.METHOD_NOT_FOUND, "no method " .. req.method)
      end
    `);
    const c = await TcpClient.connect(s.port);
    c.write('{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}\n');
    c.write('\n{"method":"nope","id":"x"}\r\n');
    c.write('{"method":"hello","params":["ann"]}\n{"method":"subscribe","params":{"channel":"ticks"},"id":7}\n');
    const lines = (await c.lines(4)).map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ jsonrpc: "2.0", result: 5, id: 1 });
    expect(lines[1]).toEqual({ jsonrpc: "2.0", error: { code: -32601, message: "no method nope" }, id: "x" });
    expect(lines[2]).toEqual({ jsonrpc: "2.0", method: "welcome", params: { who: "ann" } });
    expect(lines[3]).toEqual({ jsonrpc: "2.0", result: true, id: 7 });
    // Bad input is answered with its error, then the connection is closed (as connmix's module closes it).
    const bad: [string, (e: any) => void][] = [
      ["{bad json\n", (e) => expect([e.error.code, e.id]).toEqual([-32700, null])],
      ['{"params":[]}\n', (e) => expect(e).toEqual({ jsonrpc: "2.0", error: { code: -32600, message: "invalid request: method must be a string" }, id: null })],
      ['["not","an","object"]\n', (e) => expect(e.error.code).toBe(-32600)],
    ];
    for (const [line, check] of bad) {
      const b = await TcpClient.connect(s.port);
      b.write(line + '{"method":"add","params":[1,1],"id":2}\n');
      await b.waitClosed();
      const got = b.text().trim().split("\n");
      expect(got).toHaveLength(1); // the request after the bad line was not served
      check(JSON.parse(got[0]!));
    }
    // A pushed JSON text, even pretty-printed, arrives as one line.
    expect(s.engine.node.publishLocal("ticks", '{\n  "price": 1.5\n}', 1)).toEqual([1, 0]);
    expect(JSON.parse((await c.lines(5))[4]!)).toEqual({ price: 1.5 });
  });
});

describe("lua/entry.socket.lua (demo line chat)", () => {
  test("welcome, echo outside a room, join, chat between two clients, quit", async () => {
    // Run from a temp lua/ root (with protocols/), like an installed copy.
    const demo = readFileSync(join(import.meta.dir, "..", "..", "lua", "entry.socket.lua"), "utf8");
    const s = await socketServer(join(luaRoot({ "entry.socket.lua": demo }), "entry.socket.lua"));
    const a = await TcpClient.connect(s.port);
    const b = await TcpClient.connect(s.port);
    expect((await a.lines(1))[0]).toMatch(/^welcome \d+, \/join <room> to chat$/);
    a.write("echo me\n/join lobby\n/name ann\n");
    b.write("/join lobby\n");
    await b.lines(2);
    a.write("hello all\n");
    expect(await a.lines(5)).toEqual([a.text().split("\n")[0], "echo me", "joined lobby", "name ann", "ann: hello all"]);
    expect((await b.lines(3))[2]).toBe("ann: hello all");
    b.write("/quit\n/bogus\n");
    expect((await b.lines(5)).slice(3)).toEqual(["left", "error: unknown command /bogus"]);
    a.write("anyone?\n");
    expect((await a.lines(6))[5]).toBe("ann: anyone?");
    await Bun.sleep(50);
    expect(b.text().split("\n").length).toBe(6); // b left: nothing more
  });
});

