// `websocket` servers end to end with two real clients, Bun's WebSocket and the `ws` package: the chat room
// of lua/entry.websocket.lua, text/binary/fragmented messages, close codes and on_close reasons, the idle
// timeout, handshake refusal, mix.websocket() and the trailing conn argument.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import WS from "ws";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { Client, openWs, type Collected } from "../helpers/ws.ts";
import { luaRoot } from "../helpers/engine.ts";
import { startServer } from "./helpers";

const readLog = captureLog();
afterAll(cleanupAll);

/** Status and body of a refused upgrade, as the `ws` client sees it. */
function refused(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WS(url, { headers });
    ws.on("open", () => reject(new Error("upgrade was accepted")));
    ws.on("error", () => {});
    ws.on("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
  });
}

const ECHO = `
  closes = {}
  function on_handshake(id, headers, server, conn)
    if headers["X-Refuse"] == "plain" then return false end
    if headers["X-Refuse"] == "custom" then return false, 401, "login first" end
    if headers["X-Refuse"] == "error" then error("handshake blew up") end
    -- sent before the upgrade completes: delivered first
    conn:send(string.format("hello %s %s %s %s %s", tostring(mix.websocket() == conn), server.Method,
      server.RequestUri, tostring(server.Host ~= ""), headers["X-Name"] or "-"))
  end
  function on_message(msg, conn)
    local me = mix.websocket()
    if msg.data == "close" then return conn:close() end
    if msg.data == "closes" then return conn:send(table.concat(closes, ",")) end
    conn:send(msg.type .. ":" .. #msg.data .. ":" .. tostring(msg.finish) .. ":" .. tostring(me == conn), "text")
    conn:send(msg.data, msg.type)
  end
  function on_close(id, err, conn)
    closes[#closes + 1] = tostring(err) .. "/" .. tostring(conn:client_id() == id)
  end
`;

describe("messages", () => {
  test("Bun WebSocket: text and binary echo, on_handshake's early send, mix.websocket() == trailing conn", async () => {
    const s = await startServer(ECHO);
    const c = await Client.open(s.url + "?room=7");
    c.send("héllo");
    c.send(new Uint8Array([0, 255, 1, 254]));
    await until(() => c.received.length === 5);
    expect(c.received[0]).toBe("hello true GET /chat?room=7 true -");
    expect(c.received.slice(1)).toEqual([
      "text:6:true:true", "héllo", "binary:4:true:true", Buffer.from([0, 255, 1, 254]),
    ]);
    c.close();
  });

  test("ws package: request headers reach on_handshake; a fragmented message arrives whole; ping gets pong", async () => {
    const s = await startServer(ECHO);
    const [ws, c] = await openWs(s.url, { headers: { "X-Name": "zed" } });
    await until(() => c.received.length === 1);
    expect(c.received[0]).toBe("hello true GET /chat true zed");
    ws.send("frag-", { fin: false });
    ws.send("ment-", { fin: false });
    ws.send("ed", { fin: true });
    const big = Buffer.alloc(200_000, 7);
    ws.send(big.subarray(0, 100_000), { fin: false, binary: true });
    ws.send(big.subarray(100_000), { fin: true, binary: true });
    const pong = new Promise<Buffer>((resolve) => ws.once("pong", resolve));
    ws.ping("are you there");
    expect((await pong).toString()).toBe("are you there");
    await until(() => c.received.length === 5);
    expect(c.received.slice(1, 3)).toEqual(["text:12:true:true", "frag-ment-ed"]);
    expect(c.received[3]).toBe("binary:200000:true:true");
    expect(Buffer.compare(c.received[4] as Buffer, big)).toBe(0);
    ws.close();
  });
});

// A conn:send to the connection whose event runs is kept in C and sent after the callback (native/runtime.c's
// reply_send): what the client sees and what conn:send returns must not differ from a send through JS.
const REPLIES = `
  results = {}
  function on_message(msg, conn)
    local d = msg.data
    if d == "two" then conn:send("1") conn:send("2")
    elseif d == "around-js" then conn:send("a") mix.json_encode({ 1 }) conn:send("b")
    elseif d == "then-js" then conn:send("c") conn:subscribe("room") conn:send("d")
    elseif d == "binary-then-js" then conn:send("e", "binary") conn:unsubscribe("room") conn:send("f")
    elseif d == "built" then
      conn:send("built " .. string.rep(d, 2) .. "!") -- 17 bytes, referenced by nothing in Lua
      collectgarbage("collect")
      for i = 1, 1000 do local junk = ("%017d"):format(i) end -- would take its memory if it were freed
    elseif d == "error" then conn:send("before the error") error("boom")
    elseif d == "close" then conn:close() results.after_close = tostring(conn:send("late"))
    elseif d == "results" then conn:send(tostring(results.first) .. "/" .. tostring(results.after_close))
    elseif msg.type == "binary" then conn:send(d, "binary")
    else results.first = tostring(conn:send(d)) end
  end
`;

describe("replies", () => {
  test("kept or sent through JS: same order, bytes and results (nil, or an error once closed)", async () => {
    const s = await startServer(REPLIES);
    const c = await Client.open(s.url);
    c.send("plain");
    c.send("two");
    c.send("around-js");
    c.send("then-js");
    c.send("binary-then-js");
    c.send("built");
    c.send("error");
    c.send(new Uint8Array([0, 255, 10, 13]));
    await until(() => c.received.length === 12);
    expect(c.received).toEqual([
      "plain", "1", "2", "a", "b", "c", "d", Buffer.from("e"), "f", "built builtbuilt!", "before the error", Buffer.from([0, 255, 10, 13]),
    ]);
    expect(readLog()).toContain("boom");
    const closing = await Client.open(s.url);
    closing.send("close");
    await until(() => closing.closed !== null);
    const asker = await Client.open(s.url);
    asker.send("results");
    await until(() => asker.received.length === 1);
    const [first, afterClose] = String(asker.received[0]).split("/");
    expect(first).toBe("nil");
    expect(afterClose).not.toBe("nil");
    c.close();
    asker.close();
  });
});

describe("close", () => {
  test("client close codes reach on_close as err (nil for 1000/1001); conn:close() sends 1000", async () => {
    const s = await startServer(ECHO);
    const [a] = await openWs(s.url);
    a.close(4001, "bye now");
    const b = await Client.open(s.url);
    b.close(1000);
    const c = await Client.open(s.url);
    c.send("close");
    await until(() => c.closed !== null);
    expect(c.closed).toEqual({ code: 1000, reason: "" });
    const [d, dc] = await openWs(s.url);
    await until(() => dc.received.length === 1);
    d.send("closes");
    await until(() => dc.received.length === 2);
    expect(String(dc.received[1]).split(",").sort()).toEqual(["close 4001 bye now/true", "nil/true", "nil/true"]);
    d.terminate(); // no close frame at all
    const e = await Client.open(s.url);
    for (let i = 0; i < 100 && !String(e.received.at(-1)).includes("1006"); i++) {
      e.send("closes");
      await Bun.sleep(20);
    }
    expect(String(e.received.at(-1))).toContain("close 1006");
  });

  test("readTimeout: a silent client is closed with 1001 'read timeout'; one that pings stays", async () => {
    const s = await startServer(ECHO, { readTimeout: 0.5 });
    const started = Date.now();
    const quiet = await Client.open(s.url);
    const [pinger, pc] = await openWs(s.url);
    const timer = setInterval(() => pinger.ping(), 100);
    await until(() => quiet.closed !== null, 4000);
    const silentFor = Date.now() - started;
    expect(quiet.closed).toEqual({ code: 1001, reason: "read timeout" });
    expect(silentFor).toBeGreaterThanOrEqual(450);
    expect(silentFor).toBeLessThan(3000);
    await Bun.sleep(1000); // twice readTimeout
    clearInterval(timer);
    expect(pc.closed).toBeNull();
    pinger.send("closes");
    await until(() => pc.received.length === 2);
    expect(pc.received[1]).toBe("read timeout/true");
  }, 10_000);
});

describe("handshake", () => {
  test("on_handshake false → 403; false, status, message → that response; an error → 500; wrong path → 404", async () => {
    const s = await startServer(ECHO);
    expect(await refused(s.url, { "X-Refuse": "plain" })).toEqual({ status: 403, body: "Forbidden" });
    expect(await refused(s.url, { "X-Refuse": "custom" })).toEqual({ status: 401, body: "login first" });
    expect(await refused(s.url, { "X-Refuse": "error" })).toEqual({ status: 500, body: "handshake failed" });
    expect((await refused(s.url.replace("/chat", "/other"))).status).toBe(404);
    expect(s.engine.node.connections.size).toBe(0); // refused upgrades leave nothing behind
    expect(readLog()).toContain("handshake blew up");
    // Bun's client sees the refusal as a failed open.
    const bun = new WebSocket(s.url, { headers: { "X-Refuse": "plain" } });
    const failed = await new Promise<boolean>((resolve) => {
      bun.onopen = () => resolve(false);
      bun.onerror = () => resolve(true);
    });
    expect(failed).toBe(true);
  });
});

describe("chat room (lua/entry.websocket.lua)", () => {
  test("join → success, send → every member (Bun and ws clients) receives, quit → no more", async () => {
    const entry = readFileSync(join(import.meta.dir, "..", "..", "lua", "entry.websocket.lua"), "utf8");
    const s = await startServer(join(luaRoot({ "entry.websocket.lua": entry }), "entry.websocket.lua"));
    const a = await Client.open(s.url);
    const [b, bc] = await openWs(s.url);
    const o = await Client.open(s.url); // in another room
    const json = (c: Collected, i: number) => JSON.parse(String(c.received[i]));
    a.send(JSON.stringify({ op: "join", room_id: 1002 }));
    b.send(JSON.stringify({ op: "join", room_id: 1002 }));
    o.send(JSON.stringify({ op: "join", room_id: 9 }));
    await until(() => a.received.length === 1 && bc.received.length === 1 && o.received.length === 1);
    expect(json(a, 0)).toEqual({ status: "success" });
    expect(json(bc, 0)).toEqual({ status: "success" });
    a.send(JSON.stringify({ op: "send", msg: "hi room" }));
    await until(() => a.received.length === 3 && bc.received.length === 2);
    const ids = [...s.engine.node.connections.keys()];
    const published = { client_id: ids[0], msg: "hi room" };
    expect([json(a, 1), json(a, 2)]).toContainEqual(published);
    expect([json(a, 1), json(a, 2)]).toContainEqual({ status: "success" });
    expect(json(bc, 1)).toEqual(published);
    b.send(JSON.stringify({ op: "quit" }));
    await until(() => bc.received.length === 3);
    expect(json(bc, 2)).toEqual({ status: "success" });
    a.send(JSON.stringify({ op: "send", msg: "still here?" }));
    await until(() => a.received.length === 5);
    b.send("not json");
    await until(() => bc.received.length === 4);
    expect(json(bc, 3).status).toBe("error");
    expect(bc.received.length).toBe(4); // quit: b got nothing from the room
    expect(o.received.length).toBe(1); // another room: nothing at all
  });

  test("a room the mesh cannot carry (a name over 65535 bytes) is refused at join; mix.mesh.publish refuses one too", async () => {
    const entry = readFileSync(join(import.meta.dir, "..", "..", "lua", "entry.websocket.lua"), "utf8");
    const s = await startServer(join(luaRoot({ "entry.websocket.lua": entry }), "entry.websocket.lua"));
    const a = await Client.open(s.url);
    a.send(JSON.stringify({ op: "join", room_id: "r".repeat(70_000) }));
    await until(() => a.received.length === 1);
    expect(JSON.parse(String(a.received[0]))).toEqual({ status: "error", msg: "channel name too long: 70005 bytes (at most 65535)" });
    const p = await startServer(`function on_message(msg)
  local s, f, err = mix.mesh.publish(string.rep("r", 70000), "x")
  mix.websocket():send(s .. " " .. f .. " " .. tostring(err))
end`);
    const b = await Client.open(p.url);
    b.send("go");
    await until(() => b.received.length === 1);
    expect(String(b.received[0])).toBe("0 0 channel name too long: 70000 bytes (at most 65535)");
  });
});
