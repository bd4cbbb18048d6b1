// The two callback conventions (docs/lua-api.md): each entry's is detected from its parameter names and
// logged, the server's `convention` key overrides it, and each callback gets the arguments of its convention.
import { afterEach, describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config/index.ts";
import { luaRoot, startEngine } from "../helpers/engine.ts";
import { TcpClient } from "../engine/helpers.ts";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { Client } from "../helpers/ws.ts";

afterEach(cleanupAll);

// Every callback reports its arguments as a line; on_close sends it to the surviving "observer" connection.
const SOCKET_101 = `
observer = nil
function on_connect(conn)
  if not observer then observer = conn end
  conn:send("connect " .. type(conn) .. " " .. conn:client_id() .. " " .. mix.server.convention .. "\\n")
end
function protocol_input(buf, conn) local i = buf:tostring():find("\\n", 1, true) return i or 0 end
function protocol_decode(str, conn) return str:sub(1, -2) end
function on_message(data, conn) conn:send("message " .. data .. " " .. conn:client_id() .. "\\n") end
function on_close(err, conn)
  if conn ~= observer then observer:send("close " .. tostring(err) .. " " .. conn:client_id() .. "\\n") end
end`;

const SOCKET_103 = SOCKET_101.replace("function on_connect(conn)", "function on_connect(client_id, conn)")
  .replace("function on_close(err, conn)", "function on_close(client_id, err, conn)")
  .replace("conn:client_id() .. \"\\\\n\")\nend\n", "client_id .. \"\\\\n\")\nend\n");

describe("callback conventions", () => {
  test("a 1.0.1 socket entry gets on_connect(conn) and on_close(err, conn); the log says which convention", async () => {
    const logText = captureLog();
    const s = await startEngine(SOCKET_101, { server: { protocol: "socket" } });
    expect(logText()).toMatch(/INFO\t.*lua server \S+entry\.lua uses the 1\.0\.1 callback convention: on_connect\(conn\), on_close\(err, conn\)/);
    const observer = await TcpClient.connect(s.port);
    const [hello] = await observer.lines(1);
    expect(hello).toMatch(/^connect table \d+ 1\.0\.1$/);
    const other = await TcpClient.connect(s.port);
    const [otherHello] = await other.lines(1);
    const id = otherHello!.split(" ")[2];
    other.write("hi\n");
    expect((await other.lines(2))[1]).toBe(`message hi ${id}`);
    other.end();
    expect((await observer.lines(2))[1]).toBe(`close nil ${id}`);
  });

  test("a 1.0.3 socket entry gets on_connect(client_id, conn) and on_close(client_id, err, conn)", async () => {
    const logText = captureLog();
    const s = await startEngine(SOCKET_103, { server: { protocol: "socket" } });
    expect(logText()).toMatch(/uses the 1\.0\.3 callback convention: on_connect\(client_id, conn\), on_close\(client_id, err, conn\)/);
    const observer = await TcpClient.connect(s.port);
    expect((await observer.lines(1))[0]).toMatch(/^connect table \d+ 1\.0\.3$/);
    const other = await TcpClient.connect(s.port);
    const id = (await other.lines(1))[0]!.split(" ")[2];
    other.end();
    expect((await observer.lines(2))[1]).toBe(`close nil ${id}`);
  });

  test("the server's convention key overrides what the names suggest", async () => {
    const logText = captureLog();
    // Named like 1.0.3, declared 1.0.1: on_connect's first argument is then the connection.
    const entry = `function on_connect(client_id) client_id:send("got " .. type(client_id) .. "\\n") end`;
    const s = await startEngine(entry, { server: { protocol: "socket", convention: "1.0.1" } });
    expect(logText()).toMatch(/uses the 1\.0\.1 callback convention: set by the server's convention key/);
    const c = await TcpClient.connect(s.port);
    expect((await c.lines(1))[0]).toBe("got table");
  });

  test("an entry without on_connect, on_close or on_handshake runs as 1.0.3", async () => {
    const logText = captureLog();
    await startEngine(`function on_message(msg, conn) end`);
    expect(logText()).toMatch(/uses the 1\.0\.3 callback convention: no on_connect, on_close or on_handshake tells/);
  });

  test("callbacks that disagree are a WARN, and 1.0.3 is used", async () => {
    const logText = captureLog();
    await startEngine(`function on_connect(conn) end\nfunction on_close(client_id, err) end`, { server: { protocol: "socket" } });
    expect(logText()).toMatch(/WARN\t.*uses the 1\.0\.3 callback convention: callbacks disagree \(on_connect\(conn\) looks 1\.0\.1, on_close\(client_id, err\) looks 1\.0\.3\); set the server's convention key to choose/);
  });

  test("a 1.0.1 websocket entry gets on_handshake(headers, conn) and on_close(err, conn)", async () => {
    const entry = `
function on_handshake(headers, conn)
  conn:set_context_value("ua", headers["User-Agent"] or "none")
  conn:send("handshake " .. type(headers) .. " " .. type(conn))
end
function on_message(msg, conn) conn:send(msg.type .. " " .. msg.data .. " " .. conn:context_value("ua")) end
function on_close(err, conn) mix.log(mix.INFO, "closed " .. tostring(err) .. " " .. conn:client_id()) end`;
    const logText = captureLog();
    const s = await startEngine(entry);
    expect(logText()).toMatch(/uses the 1\.0\.1 callback convention: on_close\(err, conn\), on_handshake\(headers, conn\)/);
    const ws = await Client.open(s.url);
    expect(await ws.next()).toBe("handshake table table");
    ws.send("hi");
    expect(await ws.next()).toMatch(/^text hi /);
    ws.close(1000);
    await until(() => /closed nil \d+/.test(logText()), 3000, "on_close(err, conn) logged");
  });
});

test("a bad convention key names the key and the file", () => {
  const entry = luaRoot({ "e.lua": "" }) + "/e.lua";
  expect(() => parseConfig(`engine:\n  servers:\n    - { port: 7000, entry: ${entry}, convention: 1.0.2 }\n`, "/etc/connmix.yaml"))
    .toThrow('/etc/connmix.yaml: engine.servers[0].convention must be "auto", "1.0.1" or "1.0.3", got "1.0.2"');
});
