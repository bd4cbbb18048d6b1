// lua/protocols/websocket.lua: RFC 6455 written in Lua on a `socket` server, checked with standard clients
// (Bun's WebSocket and the `ws` package) and with hand-made frames over raw TCP.
import { afterAll, describe, expect, test } from "bun:test";
import type { Started } from "../helpers/engine.ts";
import { cleanupAll } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { until } from "../helpers/wait.ts";
import { Client, openWs } from "../helpers/ws.ts";
import { startServer, TcpClient } from "./helpers";

const readLog = captureLog();
let s: Started;
afterAll(cleanupAll);

const ENTRY = `
  local websocket = require("protocols.websocket")
  protocol_input, protocol_decode, protocol_encode = websocket.input, websocket.decode, websocket.encode
  closes = {}
  function on_handshake(id, headers, server, conn)
    if headers["X-Refuse"] == "plain" then return false end
    if headers["X-Refuse"] == "custom" then return false, 401, "login first" end
    conn:subscribe("all")
    websocket.send(conn, string.format("hello %s %s %s %s", server.Method, server.RequestUri,
      tostring(mix.socket.tcp() == conn and conn:client_id() == id), headers["X-Name"] or "-"))
  end
  function on_message(msg, conn)
    if msg.data == "close" then return websocket.close(conn, 4002, "done") end
    if msg.data == "closes" then return websocket.send(conn, table.concat(closes, ",")) end
    websocket.send(conn, msg.type .. ":" .. #msg.data .. ":" .. tostring(msg.finish))
    websocket.send(conn, msg.data, msg.type)
  end
  function on_close(id, err, conn) closes[#closes + 1] = tostring(websocket.close_code(conn)) end
`;

async function server(): Promise<Started> {
  s ??= await startServer(ENTRY, { protocol: "socket", options: [{ name: "path", value: "/ws" }] });
  return s;
}

/** A client frame: FIN bit, opcode, masked with a fixed key unless `mask` is false. */
function frame(op: number, payload: string | Buffer, fin = true, mask = true): Buffer {
  const data = Buffer.from(payload);
  const n = data.length;
  const head = n < 126 ? Buffer.from([0, n]) : Buffer.from([0, 126, n >> 8, n & 255]);
  head[0] = (fin ? 0x80 : 0) | op;
  if (!mask) return Buffer.concat([head, data]);
  head[1] |= 0x80;
  const key = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([head, key, data.map((b, i) => b ^ key[i % 4]!)]);
}

/** Server frames in `buf` after the HTTP response. */
function frames(buf: Buffer): { op: number; fin: boolean; data: Buffer }[] {
  const out = [];
  let at = buf.indexOf("\r\n\r\n") + 4;
  while (at + 2 <= buf.length) {
    let n = buf[at + 1]! & 127;
    let start = at + 2;
    if (n === 126) (n = buf.readUInt16BE(at + 2)), (start = at + 4);
    if (start + n > buf.length) break;
    out.push({ op: buf[at]! & 15, fin: (buf[at]! & 128) !== 0, data: buf.subarray(start, start + n) });
    at = start + n;
  }
  return out;
}

const UPGRADE = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
  + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

async function rawClient(extraHeaders = ""): Promise<TcpClient> {
  const c = await TcpClient.connect((await server()).port);
  c.write(UPGRADE + extraHeaders + "\r\n");
  await until(() => c.text().includes("\r\n\r\n"));
  return c;
}

describe("with standard clients", () => {
  test("Bun WebSocket: upgrade on the path option, on_handshake's early send, text and binary echo", async () => {
    const srv = await server();
    const c = await Client.open(`ws://127.0.0.1:${srv.port}/ws?x=1`);
    c.send("héllo");
    c.send(new Uint8Array([0, 255, 10]));
    await until(() => c.received.length === 5);
    expect(c.received).toEqual([
      "hello GET /ws?x=1 true -", "text:6:true", "héllo", "binary:3:true", Buffer.from([0, 255, 10]),
    ]);
    c.close();
  });

  test("ws: fragmented messages, ping → pong, a 65535-byte message passes", async () => {
    const srv = await server();
    const [ws, c] = await openWs(`ws://127.0.0.1:${srv.port}/ws`, { headers: { "X-Name": "zed" } });
    ws.send("frag", { fin: false });
    ws.send("men", { fin: false });
    ws.send("ted", { fin: true });
    const big = Buffer.from(crypto.getRandomValues(new Uint8Array(65535)));
    ws.send(big.subarray(0, 40000), { fin: false, binary: true });
    ws.send(big.subarray(40000), { fin: true, binary: true });
    const pong = new Promise<Buffer>((resolve) => ws.once("pong", resolve));
    ws.ping("ping data");
    expect((await pong).toString()).toBe("ping data");
    await until(() => c.received.length === 5);
    expect(c.received.slice(0, 4)).toEqual(["hello GET /ws true zed", "text:10:true", "fragmented", "binary:65535:true"]);
    expect(Buffer.compare(c.received[4] as Buffer, big)).toBe(0);
    ws.close();
  });

  test("close handshake: the client's code is echoed and kept; websocket.close sends the server's", async () => {
    const srv = await server();
    const [a, ac] = await openWs(`ws://127.0.0.1:${srv.port}/ws`);
    a.close(4001, "bye");
    await until(() => ac.closed !== null);
    expect(ac.closed!.code).toBe(4001);
    const b = await Client.open(`ws://127.0.0.1:${srv.port}/ws`);
    b.send("close");
    await until(() => b.closed !== null);
    expect(b.closed).toEqual({ code: 4002, reason: "done" });
    const d = await Client.open(`ws://127.0.0.1:${srv.port}/ws`);
    d.send("closes");
    await until(() => d.received.length === 2);
    expect(String(d.received[1]).split(",")).toEqual(expect.arrayContaining(["4001", "nil"]));
    d.close();
  });

  test("a message over 65535 bytes (one frame or fragments) closes with 1009; others are unaffected", async () => {
    const srv = await server();
    const url = `ws://127.0.0.1:${srv.port}/ws`;
    const [a, ac] = await openWs(url);
    const [b, bc] = await openWs(url);
    const o = await Client.open(url);
    a.send(Buffer.alloc(65536));
    b.send(Buffer.alloc(40000), { fin: false });
    b.send(Buffer.alloc(40000), { fin: true });
    await until(() => ac.closed !== null && bc.closed !== null);
    expect([ac.closed!.code, bc.closed!.code]).toEqual([1009, 1009]);
    o.send("still ok");
    await until(() => o.received.length === 3);
    expect(o.received[2]).toBe("still ok");
    o.close();
  });

  test("pushes through protocol_encode: sendLocal and publishLocal become text or binary frames", async () => {
    const srv = await server();
    const c = await Client.open(`ws://127.0.0.1:${srv.port}/ws`);
    await until(() => c.received.length === 1);
    const id = [...srv.engine.node.connections.values()].find((x) => x.open)!.id;
    expect(srv.engine.node.sendLocal(id, "to you", 1)).toBeNull();
    expect(srv.engine.node.sendLocal(id, Buffer.from([9, 8]), 2)).toBeNull();
    expect(srv.engine.node.publishLocal("all", "to all", 1)[0]).toBeGreaterThanOrEqual(1);
    await until(() => c.received.length === 4);
    expect(c.received.slice(1)).toEqual(["to you", Buffer.from([9, 8]), "to all"]);
    c.close();
  });
});

describe("refused upgrades", () => {
  test("on_handshake false → 403, false with status and message → that response", async () => {
    const plain = await rawClient("X-Refuse: plain\r\n");
    expect(plain.text()).toStartWith("HTTP/1.1 403 Forbidden\r\n");
    await plain.waitClosed();
    const custom = await rawClient("X-Refuse: custom\r\n");
    await custom.waitClosed();
    expect(custom.text()).toStartWith("HTTP/1.1 401 ");
    expect(custom.text()).toEndWith("\r\n\r\nlogin first");
  });

  test("wrong path 404, not GET 405, no key or huge header 400, wrong version 426", async () => {
    const port = (await server()).port;
    const ask = async (req: string) => {
      const c = await TcpClient.connect(port);
      c.write(req);
      await c.waitClosed();
      return c.text().split("\r\n")[0];
    };
    expect(await ask(UPGRADE.replace("/ws", "/other") + "\r\n")).toBe("HTTP/1.1 404 Not Found");
    expect(await ask(UPGRADE.replace("GET", "POST") + "\r\n")).toBe("HTTP/1.1 405 Method Not Allowed");
    expect(await ask(UPGRADE.replace(/Sec-WebSocket-Key.*\r\n/, "") + "\r\n")).toBe("HTTP/1.1 400 Bad Request");
    expect(await ask(UPGRADE.replace("Version: 13", "Version: 8") + "\r\n")).toBe("HTTP/1.1 426 Upgrade Required");
    expect(await ask("nonsense\r\n\r\n")).toBe("HTTP/1.1 400 Bad Request");
    expect(await ask(UPGRADE + "X-Big: " + "b".repeat(9000))).toBe("HTTP/1.1 400 Bad Request"); // header over 8 KiB
  });
});

describe("frames over raw TCP", () => {
  test("the RFC 6455 accept key; frames split byte by byte or packed in one chunk; ping inside a fragmented message", async () => {
    const c = await rawClient();
    expect(c.text()).toContain("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n");
    for (const b of frame(1, "slow")) c.write(Buffer.from([b]));
    c.write(Buffer.concat([frame(1, "a"), frame(2, "b"), frame(1, "pa", false), frame(9, "p!"), frame(0, "rt")]));
    await until(() => frames(c.received).length === 10);
    expect(frames(c.received).map((f) => [f.op, f.data.toString()])).toEqual([
      [1, "hello GET /ws true -"], [1, "text:4:true"], [1, "slow"], [1, "text:1:true"], [1, "a"],
      [1, "binary:1:true"], [2, "b"], [10, "p!"], [1, "text:4:true"], [1, "part"],
    ]);
  });

  test("protocol errors close with 1002: unmasked frame, continuation without a start", async () => {
    for (const bad of [frame(1, "unmasked", true, false), frame(0, "cont")]) {
      const c = await rawClient();
      c.write(bad);
      await c.waitClosed();
      const last = frames(c.received).at(-1)!;
      expect([last.op, last.data.readUInt16BE(0)]).toEqual([8, 1002]);
    }
    expect(readLog()).not.toContain("lua callback error");
  });
});
