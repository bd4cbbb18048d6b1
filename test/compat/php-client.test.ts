// The wire of the PHP client (connmix/connmix-php, src/V1/AsyncNode.php): `consume()` sends
// {"m":"queue.consume","p":["topic"],"i":n}, and meshSend/connCall send the client id back as a JSON
// number (PHP int); its Message::nodeID(): int needs "n" as a JSON number and Message::data() must be an
// array, also when the script pushed a string it had encoded with mix.json_encode (as connmix's entries do).
// Such a backend consumes, answers and subscribes unchanged.
import { afterAll, describe, expect, test } from "bun:test";
import { useTestEngine } from "../api/helpers.ts";
import { cleanupAll } from "../helpers/files.ts";
import { Client } from "../helpers/ws.ts";
import { nodeOf } from "../../src/net/client-ids.ts";

// As connmix's own entries do: every text frame goes to queue "foo" with the connection's context,
// encoded by the script first; "raw:<text>" pushes <text> as it is. Loading the script pushes to "boot",
// outside any client's callback.
const ENTRY = `
mix.queue.push("boot", { loaded = true })
function on_message(msg, conn)
  if msg.type ~= "text" then return end
  local raw = msg.data:match("^raw:(.*)$")
  local s = raw or mix.json_encode({ frame = msg, ctx = conn:context() })
  local n, err = mix.queue.push("foo", s)
  if err then conn:send("push failed: " .. err) end
end`;

const e = useTestEngine(ENTRY);
afterAll(cleanupAll);

describe("the PHP client's requests", () => {
  test("queue.consume with a bare list of topics consumes like queue.pop; ids go back as numbers", async () => {
    const php = await Client.open(e.apiWs);
    expect(await php.call("queue.consume", ["foo"], 1)).toEqual({ E: null, r: { s: true }, i: 1 });
    expect(await php.call("queue.consume", ["foo"], 2)).toEqual({ E: { c: 202, m: expect.any(String) }, i: 2 });

    const user = await Client.open(e.chatUrl);
    user.send("hello");
    const event = await php.until((m) => m.e === "queue.pop");
    expect(event.p).toMatchObject({ t: "foo", d: { frame: { type: "text", data: "hello", finish: true }, ctx: {} } });
    expect(event.p.c).toMatch(/^\d+$/); // Message::clientID(): int takes the decimal string
    const id = Number(event.p.c); // ... and the backend sends it back as a PHP int
    expect(event.p.n).toBe(e.engine.node.index); // Message::nodeID(): int, the engine's node index
    expect(event.p.n).toBe(nodeOf(id));

    expect(await php.call("conn.call", { c: id, f: "subscribe", a: ["user_10001"] }, 3)).toEqual({ E: null, r: { s: true }, i: 3 });
    expect(await php.call("mesh.send", { c: id, d: "received: hello" }, 4)).toEqual({ E: null, r: { s: true }, i: 4 });
    expect(await user.next()).toBe("received: hello");
    expect(await php.call("mesh.publish", { c: "user_10001", d: '{"broadcast":"ok"}' }, 5)).toEqual({ E: null, r: { s: 1, f: 0 }, i: 5 });
    expect(await user.next()).toBe('{"broadcast":"ok"}');

    expect(await php.call("conn.call", { c: id, f: "set_context_value", a: ["user_id", 1000] }, 6)).toEqual({ E: null, r: { s: true }, i: 6 });
    user.send("again");
    const second = await php.until((m) => m.e === "queue.pop");
    expect(second.p.d).toEqual({ frame: { type: "text", data: "again", finish: true }, ctx: { user_id: 1000 } });

    // Only a string holding a whole JSON object or array is taken as encoded; others stay strings.
    for (const raw of ["hello", " [1, 2] ", "{not json", '{"a":1} trailing', "123", '"quoted"']) {
      user.send("raw:" + raw);
      const e = await php.until((m) => m.e === "queue.pop");
      expect(e.p.d).toEqual(raw === " [1, 2] " ? [1, 2] : raw);
    }
  });

  test("an item pushed outside a client's callback carries client 0 and this engine's node index", async () => {
    const php = await Client.open(e.apiWs);
    expect(await php.call("queue.consume", ["boot"], 1)).toEqual({ E: null, r: { s: true }, i: 1 });
    const event = await php.until((m) => m.e === "queue.pop");
    expect(event.p).toEqual({ n: e.engine.node.index, c: "0", t: "boot", d: { loaded: true } });
    php.close();
  });
});
