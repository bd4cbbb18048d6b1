// The login flow of connmix's Laravel chat example, with scripts written here in both callback conventions:
// the handshake and every message go to a backend through the queue, the backend signs the user in with
// conn.call (releasing the script's wait_context_value), subscribes it to rooms, publishes room messages,
// and learns through the queue that a user left. The backend is this test, on /ws/v1 and the HTTP API.
import { afterEach, describe, expect, test } from "bun:test";
import { startApiServer } from "../../src/api/server.ts";
import { cleanupAll, onCleanup } from "../helpers/files.ts";
import { post } from "../helpers/http.ts";
import { freePort } from "../helpers/ports.ts";
import { until } from "../helpers/wait.ts";
import { Client } from "../helpers/ws.ts";
import { startEntry } from "./lua-root.ts";

afterEach(cleanupAll);

// What both entries do with a message: hand it to the backend; an auth waits until the backend answers.
const ON_MESSAGE = `
function on_message(data, conn)
  if data.type ~= "text" then return end
  local tb, err = mix.json_decode(data.data)
  if err then return end
  local ctx = conn:context()
  local item = { event = "message", frame = data, uid = ctx["uid"] }
  if tb.op == "auth" then item.headers = ctx["headers"] end
  local n, err = mix.queue.push("chat", item)
  if err then mix.log(mix.ERROR, "push error: " .. err) return end
  if tb.op == "auth" then conn:wait_context_value("uid") end
end`;

// 1.0.1: a socket server framing WebSocket with protocols/websocket in connmix's own 1.0.1 style.
const ENTRY_101 = `
require("prettyprint")
local websocket = require("protocols/websocket")
function on_connect(conn) end
function on_handshake(headers, conn)
  mix.queue.push("conn", { event = "handshake", headers = headers })
end
function on_close(err, conn)
  mix.queue.push("conn", { event = "close", uid = conn:context()["uid"] })
end
function protocol_input(buf, conn) return websocket.input(buf, conn, "/chat", on_handshake) end
function protocol_decode(str, conn) return websocket.decode(conn) end
function protocol_encode(str, conn) return websocket.encode(str) end
${ON_MESSAGE}`;

// 1.0.3: a websocket server; the headers kept in the context by on_handshake.
const ENTRY_103 = `
function on_handshake(client_id, headers, server, conn)
  conn:set_context_value("headers", headers)
  mix.queue.push("conn", { event = "handshake", headers = headers })
end
function on_close(client_id, err, conn)
  mix.queue.push("conn", { event = "close", uid = conn:context_value("uid") })
end
${ON_MESSAGE}`;

const USERS: Record<string, [number, string]> = { user1: [1, "123456"], user2: [2, "123456"] };

/** The backend: consumes chat and conn over /ws/v1 (conn.call there too), answers through the HTTP API. */
async function backend(apiPort: number) {
  const api = `http://127.0.0.1:${apiPort}`;
  const ws = await Client.open(`ws://127.0.0.1:${apiPort}/ws/v1`);
  const handshakes: any[] = [];
  const closes: any[] = [];
  const send = (c: string, d: unknown) => post(`${api}/v1/mesh/send`, { c, d: JSON.stringify(d) });
  let calls = 100;
  const call = async (c: string, f: string, a: unknown[]) => {
    const r = await ws.call("conn.call", { c, f, a }, ++calls);
    if (r.E !== null) throw new Error(`conn.call ${f}: ${JSON.stringify(r.E)}`);
  };
  const handle = async (e: any) => {
    const { c, t, d } = e.p;
    if (t === "conn") return void (d.event === "handshake" ? handshakes : closes).push({ c, ...d });
    const { op, args = [] } = JSON.parse(d.frame.data);
    if (op === "auth") {
      const user = USERS[args[0]];
      if (!user || user[1] !== args[1]) {
        await call(c, "set_context_value", ["uid", 0]);
        return void (await send(c, { op: "auth", error: "Invalid name or password" }));
      }
      await call(c, "set_context_value", ["uid", user[0]]);
      return void (await send(c, { op: "auth", success: true, agent: d.headers?.["User-Agent"] }));
    }
    if (!d.uid) return void (await send(c, { op, error: "No access" }));
    if (op === "subscribe") await call(c, "subscribe", args);
    if (op === "sendtoroom") {
      const [channel, message] = args;
      await post(`${api}/v1/mesh/publish`, { c: channel, d: JSON.stringify({ event: "subscribe", channel, data: `uid:${d.uid},message:${message}` }) });
    }
    await send(c, { op, success: true });
  };
  let chain = Promise.resolve();
  ws.ws.addEventListener("message", (m) => {
    const e = JSON.parse(String(m.data));
    if (e.e === "queue.pop") chain = chain.then(() => handle(e));
  });
  expect(await ws.call("queue.pop", { t: ["chat", "conn"] }, 1)).toEqual({ E: null, r: { s: true }, i: 1 });
  return { handshakes, closes, close: () => ws.close() };
}

for (const [convention, entry, protocol] of [["1.0.1", ENTRY_101, "socket"], ["1.0.3", ENTRY_103, "websocket"]] as const) {
  describe(`the Laravel chat flow, ${convention} callbacks`, () => {
    test("handshake, sign-in through the queue, rooms, and the close event reach the backend", async () => {
      const s = await startEntry(entry, { protocol, options: [{ name: "path", value: "/chat" }] });
      const api = await startApiServer({ ...s.config, engine: { ...s.config.engine, apiServer: { ...s.config.engine.apiServer, bind: "127.0.0.1", port: freePort() } } }, s.engine.node);
      onCleanup(() => api.stop());
      const b = await backend(api.port);
      const open = (agent: string) => Client.open(s.url, { headers: { "User-Agent": agent } });
      const [u1, u2] = await Promise.all([open("agent-1"), open("agent-2")]);
      await until(() => b.handshakes.length === 2, 3000, "two handshake events");
      expect(b.handshakes.map((h) => h.headers["User-Agent"]).sort()).toEqual(["agent-1", "agent-2"]);

      expect(JSON.parse(await u1.ask({ op: "subscribe", args: ["room_101"] }))).toEqual({ op: "subscribe", error: "No access" });
      expect(JSON.parse(await u1.ask({ op: "auth", args: ["user1", "wrong"] }))).toEqual({ op: "auth", error: "Invalid name or password" });
      expect(JSON.parse(await u2.ask({ op: "auth", args: ["user2", "123456"] }))).toEqual({ op: "auth", success: true, agent: "agent-2" });
      // uid 0 released the first wait; a second auth waits again until the backend sets uid.
      expect(JSON.parse(await u1.ask({ op: "auth", args: ["user1", "123456"] }))).toEqual({ op: "auth", success: true, agent: "agent-1" });
      for (const u of [u1, u2]) expect(JSON.parse(await u.ask({ op: "subscribe", args: ["room_101"] }))).toEqual({ op: "subscribe", success: true });

      u1.send({ op: "sendtoroom", args: ["room_101", "hello,world!"] });
      const event = { event: "subscribe", channel: "room_101", data: "uid:1,message:hello,world!" };
      expect(await u2.json()).toEqual(event);
      expect(await u1.until((m) => m.event === "subscribe")).toEqual(event);
      expect(await u1.until((m) => m.op === "sendtoroom")).toEqual({ op: "sendtoroom", success: true });

      u1.close(1000);
      await until(() => b.closes.length === 1, 3000, "the close event");
      expect(b.closes[0].uid).toBe(1);
      b.close();
    });
  });
}
