// mesh.send, mesh.publish and conn.call over real HTTP and /ws/v1 against an in-process engine, with every
// error the methods report and the handling of bad requests.
import { describe, expect, test } from "bun:test";
import { endlessChunkedPost, postJson } from "../helpers/http.ts";
import { Client } from "../helpers/ws.ts";
import { idClient, useTestEngine } from "./helpers";

// "id" answers the client id; "ctx" the context (k, a, b); "sub <ch>" subscribes.
const ENTRY = `
function on_message(msg)
  local conn = mix.websocket()
  local d = msg.data
  if d == "id" then return conn:send(string.format("%.0f", conn:client_id())) end
  if d == "ctx" then
    return conn:send("k=" .. tostring(conn:context_value("k")) .. " a=" .. tostring(conn:context_value("a")))
  end
  local ch = d:match("^sub (.+)$")
  if ch then conn:subscribe(ch) return conn:send("subscribed " .. ch) end
end
`;

const e = useTestEngine(ENTRY);

const chatClient = () => idClient(e.chatUrl);

const send = (body: unknown) => postJson(`${e.apiUrl}/v1/mesh/send`, body);
const publish = (body: unknown) => postJson(`${e.apiUrl}/v1/mesh/publish`, body);

describe("mesh.send", () => {
  test("over HTTP reaches the client; the id may be a number or a decimal string", async () => {
    const [c, id] = await chatClient();
    expect(await send({ c: id, d: "as string" })).toEqual({ status: 200, body: { E: null, r: { s: true } } });
    expect(await send({ c: Number(id), d: "as number", t: "text" })).toEqual({ status: 200, body: { E: null, r: { s: true } } });
    expect(await c.next()).toBe("as string");
    expect(await c.next()).toBe("as number");
    c.close();
  });

  test("t=binary sends the base64-decoded bytes as a binary frame", async () => {
    const [c, id] = await chatClient();
    const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80, 10]);
    expect((await send({ c: id, d: bytes.toString("base64"), t: "binary" })).body).toEqual({ E: null, r: { s: true } });
    const got = await c.next();
    expect(Buffer.isBuffer(got)).toBe(true);
    expect([...(got as Buffer)]).toEqual([...bytes]);
    c.close();
  });

  test("over /ws/v1 answers with the request id echoed", async () => {
    const [c, id] = await chatClient();
    const api = await Client.open(e.apiWs);
    api.send({ m: "mesh.send", p: { c: id, d: "via ws" }, i: 41 });
    expect(await api.json()).toEqual({ E: null, r: { s: true }, i: 41 });
    api.send({ m: "mesh.send", p: { c: Number(id), d: "again" }, i: "req-2" });
    expect(await api.json()).toEqual({ E: null, r: { s: true }, i: "req-2" });
    expect(await c.next()).toBe("via ws");
    expect(await c.next()).toBe("again");
    api.close();
    c.close();
  });

  test("errors: unknown client 401, bad arguments 101 (HTTP 400)", async () => {
    const [c, id] = await chatClient();
    const otherNode = String(2 * 2 ** 36 + 5); // node 2: there is no mesh in this test
    const unknownHere = String(Number(id) + 100000);
    const cases: [unknown, number, number, string][] = [
      [{ c: unknownHere, d: "x" }, 200, 401, `client ${unknownHere} not found`],
      [{ c: otherNode, d: "x" }, 200, 401, `client ${otherNode} not found`],
      [{ c: "abc", d: "x" }, 400, 101, 'c must be a client id (a number or a decimal string), got "abc"'],
      [{ c: 12, d: "x" }, 400, 101, "c must be a client id (a number or a decimal string), got 12"],
      [{ d: "x" }, 400, 101, "c must be a client id (a number or a decimal string), got nothing"],
      [{ c: id }, 400, 101, "d must be a string"],
      [{ c: id, d: { x: 1 } }, 400, 101, "d must be a string"],
      [{ c: id, d: "x", t: "html" }, 400, 101, 't must be "text" or "binary", got "html"'],
      [{ c: id, d: "not base64!", t: "binary" }, 400, 101, "d must be base64 when t is binary"],
      [[1, 2], 400, 101, "p must be an object"],
    ];
    const api = await Client.open(e.apiWs);
    for (const [body, status, code, message] of cases) {
      expect(await send(body)).toEqual({ status, body: { E: { c: code, m: message } } });
      expect(await api.call("mesh.send", body, 7)).toEqual({ E: { c: code, m: message }, i: 7 });
    }
    // Nothing reached the client.
    await Bun.sleep(50);
    expect(c.received.length).toBe(1);
    api.close();
    c.close();
  });
});

describe("mesh.publish", () => {
  test("reaches every subscriber and counts them", async () => {
    const members = await Promise.all([chatClient(), chatClient(), chatClient()]);
    const [outsider] = await chatClient();
    for (const [m] of members) {
      m.send("sub room:7");
      expect(await m.next()).toBe("subscribed room:7");
    }
    expect(await publish({ c: "room:7", d: "hello room" })).toEqual({ status: 200, body: { E: null, r: { s: 3, f: 0 } } });
    for (const [m] of members) expect(await m.next()).toBe("hello room");
    const api = await Client.open(e.apiWs);
    expect(await api.call("mesh.publish", { c: "room:7", d: "AAEC", t: "binary" }, 1)).toEqual({ E: null, r: { s: 3, f: 0 }, i: 1 });
    for (const [m] of members) expect([...((await m.next()) as Buffer)]).toEqual([0, 1, 2]);
    expect(await api.call("mesh.publish", { c: "room:none", d: "x" }, 2)).toEqual({ E: null, r: { s: 0, f: 0 }, i: 2 });
    expect(await api.call("mesh.publish", { c: "", d: "x" }, 3)).toEqual({ E: { c: 101, m: "c must be a channel name" }, i: 3 });
    // The mesh carries channel names of up to 65535 bytes: a longer one could reach no other engine.
    expect(await api.call("mesh.publish", { c: "é".repeat(40_000), d: "x" }, 4)).toEqual({ E: { c: 101, m: "c is 80000 bytes: a channel name is at most 65535" }, i: 4 });
    expect(await publish({ c: "room:7" })).toEqual({ status: 400, body: { E: { c: 101, m: "d must be a string" } } });
    await Bun.sleep(50);
    expect(outsider.received.length).toBe(1);
    for (const c of [outsider, api, ...members.map(([m]) => m)]) c.close();
  });
});

describe("conn.call", () => {
  test("set_context_value, set_context, subscribe and unsubscribe run on the client's connection", async () => {
    const [c, id] = await chatClient();
    const api = await Client.open(e.apiWs);
    expect(await api.call("conn.call", { c: id, f: "set_context_value", a: ["k", "v1"] }, 1)).toEqual({ E: null, r: { s: true }, i: 1 });
    c.send("ctx");
    expect(await c.next()).toBe("k=v1 a=nil");
    expect((await api.call("conn.call", { c: Number(id), f: "set_context", a: [{ a: 5 }] })).E).toBeNull();
    c.send("ctx");
    expect(await c.next()).toBe("k=nil a=5");
    expect((await api.call("conn.call", { c: id, f: "subscribe", a: ["news", "sport"] })).E).toBeNull();
    expect((await publish({ c: "sport", d: "goal" })).body.r).toEqual({ s: 1, f: 0 });
    expect(await c.next()).toBe("goal");
    expect((await api.call("conn.call", { c: id, f: "unsubscribe", a: ["sport"] })).E).toBeNull();
    expect((await publish({ c: "sport", d: "goal" })).body.r).toEqual({ s: 0, f: 0 });
    expect((await publish({ c: "news", d: "extra" })).body.r).toEqual({ s: 1, f: 0 });
    expect(await c.next()).toBe("extra");
    api.close();
    c.close();
  });

  test("errors: 301 when the call fails, 101 for bad arguments", async () => {
    const [c, id] = await chatClient();
    const gone = String(Number(id) + 100000);
    const api = await Client.open(e.apiWs);
    const err = async (p: unknown) => (await api.call("conn.call", p)).E;
    expect(await err({ c: gone, f: "set_context_value", a: ["k", 1] })).toEqual({ c: 301, m: `client ${gone} not found` });
    expect(await err({ c: String(3 * 2 ** 36 + 1), f: "subscribe", a: ["x"] })).toEqual({ c: 301, m: `client ${3 * 2 ** 36 + 1} not found` });
    expect(await err({ c: id, f: "set_context", a: ["not a table"] })).toEqual({ c: 301, m: "set_context expects a table, got string" });
    expect(await err({ c: id, f: "subscribe", a: [] })).toEqual({ c: 301, m: "no channel given" });
    expect(await err({ c: id, f: "subscribe", a: ["r".repeat(70_000)] })).toEqual({ c: 301, m: "channel name too long: 70000 bytes (at most 65535)" });
    expect(await err({ c: id, f: "close", a: [] })).toEqual({
      c: 101,
      m: 'f must be one of set_context_value, set_context, subscribe, unsubscribe, got "close"',
    });
    expect(await err({ c: id, f: "subscribe", a: "x" })).toEqual({ c: 101, m: "a must be a list of arguments" });
    expect(await err({ f: "subscribe", a: ["x"] })).toEqual({ c: 101, m: "c must be a client id (a number or a decimal string), got nothing" });
    api.close();
    c.close();
  });
});

describe("bad requests", () => {
  test("/ws/v1: 101 for malformed JSON, non-objects, unknown or missing methods and oversize frames; the connection stays usable", async () => {
    const [c, id] = await chatClient();
    const api = await Client.open(e.apiWs);
    api.send("{not json");
    const bad = await api.json();
    expect(bad.E.c).toBe(101);
    expect(bad.E.m).toStartWith("malformed JSON: ");
    expect(bad.i).toBeNull();
    api.send("[1,2]");
    expect(await api.json()).toEqual({ E: { c: 101, m: 'a request is an object {"m": method, "p": params, "i": id}' }, i: null });
    expect(await api.call("mesh.fly", {}, 5)).toEqual({ E: { c: 101, m: 'unknown method: "mesh.fly"' }, i: 5 });
    api.send({ p: {}, i: 6 });
    expect(await api.json()).toEqual({ E: { c: 101, m: "m (the method) is missing" }, i: 6 });
    const big = JSON.stringify({ m: "mesh.send", p: { c: id, d: "x".repeat(1 << 20) }, i: 7 });
    api.send(big);
    expect(await api.json()).toEqual({ E: { c: 101, m: `request too large: ${big.length} bytes, the limit is 1048576` }, i: null });
    expect(await api.call("mesh.send", { c: id, d: "still works" }, 8)).toEqual({ E: null, r: { s: true }, i: 8 });
    expect(await c.next()).toBe("still works");
    expect(api.closed).toBeNull();
    api.close();
    c.close();
  });

  test("HTTP: 400 for malformed JSON, 413 for a body over 1 MiB, then the server answers normally; 404 and 405", async () => {
    const [c, id] = await chatClient();
    const malformed = await send("{oops");
    expect(malformed.status).toBe(400);
    expect(malformed.body.E.c).toBe(101);
    expect(malformed.body.E.m).toStartWith("malformed JSON: ");
    const big = JSON.stringify({ c: id, d: "x".repeat(1 << 20) });
    expect(await send(big)).toEqual({ status: 413, body: { E: { c: 101, m: `request too large: ${big.length} bytes, the limit is 1048576` } } });
    expect(await send({ c: id, d: "after big" })).toEqual({ status: 200, body: { E: null, r: { s: true } } });
    expect(await c.next()).toBe("after big");
    expect((await fetch(`${e.apiUrl}/v1/mesh/send`)).status).toBe(405);
    expect((await fetch(`${e.apiUrl}/metrics`, { method: "POST" })).status).toBe(405);
    expect((await fetch(`${e.apiUrl}/v1/nothing`)).status).toBe(404);
    expect((await fetch(`${e.apiUrl}/ws/v1`)).status).toBe(426);
    c.close();
  });

  test("HTTP: a chunked body is answered 413 once it passes 1 MiB, without waiting for its end", async () => {
    const got = await endlessChunkedPost(e.api.port, "/v1/mesh/send");
    expect(got).toStartWith("HTTP/1.1 413");
    expect(got).toMatch(/\r\n\r\n\{"E":\{"c":101,"m":"request too large: at least \d+ bytes, the limit is 1048576"\}\}$/);
    // A chunked body within the limit is read as before.
    const body = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('{"c":"nobody","d":"x"}')), c.close()) });
    const res = await fetch(`${e.apiUrl}/v1/mesh/publish`, { method: "POST", body });
    expect(await res.json()).toEqual({ E: null, r: { s: 0, f: 0 } });
  });

  test("a WebSocket ping on /ws/v1 gets a pong", async () => {
    const api = await Client.open(e.apiWs);
    const pong = new Promise<string>((resolve) => api.ws.addEventListener("pong", (ev) => resolve(String(ev.data))));
    api.ws.ping("are you there");
    expect(await pong).toBe("are you there");
    api.close();
  });
});
