// lua/protocols/websocket.lua called the way connmix's own module is: the 1.0.1 style (input with conn and
// uri, decode(conn), send_text(conn, ...), control frames in on_message, headers in the context) and the
// docs' socket example style (input(buf, on_handshake), decode(str), send_text(data)), each driven by the
// `ws` package's client and by headless Chromium.
import { afterAll, describe, expect, test } from "bun:test";
import type { Browser } from "playwright-core";
import { launchChromium } from "../helpers/browser.ts";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { openWs } from "../helpers/ws.ts";
import { startEntry } from "./lua-root.ts";

let browser: Browser | undefined;
afterAll(async () => {
  await browser?.close();
  await cleanupAll();
});

// Written for 1.0.1: conn-first callbacks, the module given conn and the uri prefix.
const STYLE_101 = `
require("prettyprint")
local websocket = require("protocols/websocket")

function on_connect(conn) end
function on_handshake(headers, conn)
  conn:set_context_value("agent", headers["User-Agent"] or "none")
end
function protocol_input(buf, conn) return websocket.input(buf, conn, "/chat", on_handshake) end
function protocol_decode(str, conn) return websocket.decode(conn) end
function protocol_encode(str, conn) return websocket.encode(str) end
function on_message(data, conn)
  local h = conn:context()["headers"]
  if data.type == "text" then
    local ok, err = websocket.send_text(conn, "echo " .. data.data .. " " .. conn:client_id() .. " " .. h["RequestUri"] .. " " .. conn:context_value("agent"))
    if not ok then error(err) end
  elseif data.type == "binary" then
    websocket.send_binary(conn, data.data)
  elseif data.type == "ping" then
    websocket.send_text(conn, "saw ping " .. data.data)
  elseif data.type == "close" then
    mix.log(mix.INFO, "close frame " .. data.data)
  end
end
function on_close(err, conn) mix.log(mix.INFO, "left " .. conn:client_id()) end
`;

// Written after the docs' socket example: client-id callbacks, the module finding the connection itself.
const STYLE_DOCS = `
require("utils.prettyprint")
local websocket = require("protocols.websocket")

function on_connect(client_id) end
function on_handshake(client_id, headers)
  mix.log(mix.INFO, "handshake " .. client_id .. " " .. (headers["User-Agent"] or "none"))
end
function on_close(client_id, err) mix.log(mix.INFO, "left " .. client_id) end
function protocol_input(buf) return websocket.input(buf, on_handshake) end
function protocol_decode(str) return websocket.decode(str) end
function protocol_encode(str) return websocket.encode(str) end
function on_message(msg)
  local conn = mix.socket.tcp()
  websocket.send_text("Hello,World! " .. msg.type .. " " .. msg.data .. " " .. conn:client_id())
end
`;

/** Opens a WebSocket in a blank Chromium page, sends `text`, and returns the first message it gets. */
async function chromiumAsk(url: string, text: string): Promise<string> {
  browser ??= await launchChromium();
  const page = await browser.newPage();
  try {
    return await page.evaluate(([u, t]) => new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(u!);
      ws.onopen = () => ws.send(t!);
      ws.onmessage = (e) => { resolve(String(e.data)); ws.close(1000); };
      ws.onerror = () => reject(new Error("websocket error"));
    }), [url, text]);
  } finally {
    await page.close();
  }
}

describe("protocols.websocket in the 1.0.1 style", () => {
  test("handshake on the uri prefix, headers in the context, text/binary/ping/close reach on_message, pushes are frames", async () => {
    const logText = captureLog();
    const s = await startEntry(STYLE_101, { protocol: "socket", options: [] });
    expect(logText()).toMatch(/uses the 1\.0\.1 callback convention/);
    const [ws, got] = await openWs(`${s.url}?room=7`, { headers: { "User-Agent": "compat-test" } });
    ws.send("hi");
    await until(() => got.received.length === 1, 3000, "echo");
    const m = /^echo hi (\d+) \/chat\?room=7 compat-test$/.exec(String(got.received[0]));
    expect(m).not.toBeNull();
    const id = Number(m![1]);
    ws.send(Buffer.from([0, 1, 2, 255]));
    await until(() => got.received.length === 2, 3000, "binary echo");
    expect(got.received[1]).toEqual(Buffer.from([0, 1, 2, 255]));
    let pong = "";
    ws.on("pong", (d: Buffer) => (pong = d.toString()));
    ws.ping("abc");
    await until(() => got.received.length === 3 && pong === "abc", 3000, "pong and ping message");
    expect(got.received[2]).toBe("saw ping abc");
    // Data pushed by the engine goes through protocol_encode -> websocket.encode(str).
    expect(s.engine.node.sendLocal(id, "pushed", 1, false)).toBeNull();
    await until(() => got.received.length === 4, 3000, "pushed frame");
    expect(got.received[3]).toBe("pushed");
    ws.close(4001, "bye");
    await until(() => got.closed !== null, 3000, "close echoed");
    expect(got.closed).toEqual({ code: 4001, reason: "" });
    await until(() => logText().includes(`left ${id}`), 3000, "on_close(err, conn)");
    expect(logText()).toContain("close frame 4001,bye");
  });

  test("a request outside the uri prefix is refused", async () => {
    const s = await startEntry(STYLE_101, { protocol: "socket", options: [] });
    const res = await fetch(`http://127.0.0.1:${s.port}/other`, { headers: { Upgrade: "websocket", Connection: "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" } });
    expect(res.status).toBe(404);
  });

  test("headless Chromium talks to it", async () => {
    const s = await startEntry(STYLE_101, { protocol: "socket", options: [] });
    expect(await chromiumAsk(s.url, "from chromium")).toMatch(/^echo from chromium \d+ \/chat Mozilla\/5\.0 .*HeadlessChrome/);
  }, 30_000);
});

describe("protocols.websocket in the docs' style", () => {
  test("input(buf, on_handshake), decode(str), send_text(data) in 1.0.3 callbacks", async () => {
    const logText = captureLog();
    const s = await startEntry(STYLE_DOCS, { protocol: "socket" });
    expect(logText()).toMatch(/uses the 1\.0\.3 callback convention/);
    const [ws, got] = await openWs(s.url, { headers: { "User-Agent": "docs-test" } });
    ws.send("hi");
    await until(() => got.received.length === 1, 3000, "reply");
    const id = /^Hello,World! text hi (\d+)$/.exec(String(got.received[0]))![1];
    expect(logText()).toContain(`handshake ${id} docs-test`);
    expect(s.engine.node.sendLocal(Number(id), "pushed", 1, false)).toBeNull();
    await until(() => got.received.length === 2, 3000, "pushed frame");
    expect(got.received[1]).toBe("pushed");
    ws.close(1000);
    await until(() => logText().includes(`left ${id}`), 3000, "on_close(client_id, err)");
  });

  test("headless Chromium talks to it", async () => {
    const s = await startEntry(STYLE_DOCS, { protocol: "socket" });
    expect(await chromiumAsk(s.url, "from chromium")).toMatch(/^Hello,World! text from chromium \d+$/);
  }, 30_000);
});
