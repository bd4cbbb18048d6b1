// The older /ws/v1 protocol of connmix's 1.0.1-era docs and PHP client: {"method","params","id"} requests
// answered {"error","result","id"}, and queue items as {"event":"queue.consume","result":{...},"id":null}.
// params are a list holding one object (the docs) or the object itself (the PHP client's AsyncSyncNode).
import { afterAll, describe, expect, test } from "bun:test";
import { useTestEngine } from "../api/helpers.ts";
import { cleanupAll } from "../helpers/files.ts";
import { Client } from "../helpers/ws.ts";

// Every text frame goes to queue "foo" with the connection's context, encoded by the script.
const ENTRY = `
function on_message(msg, conn)
  mix.queue.push("foo", mix.json_encode({ msg = msg, ctx = conn:context() }))
end`;

const e = useTestEngine(ENTRY);
afterAll(cleanupAll);

/** Sends an old-style request and returns the answer with its id (events stay for next()). */
async function ask(api: Client, method: string, params: unknown, id: number): Promise<any> {
  api.send({ method, params, id });
  return api.until((m) => typeof m === "object" && "error" in m && m.id === id);
}

describe("the method/params protocol", () => {
  test("consume, the queue.consume event, mesh.send, conn.call and mesh.publish, as the docs' walk-through", async () => {
    const api = await Client.open(e.apiWs);
    expect(await ask(api, "server.ping", [], 1)).toEqual({ error: null, result: { status: "server.pong" }, id: 1 });
    expect(await ask(api, "queue.consume", ["foo"], 2)).toEqual({ error: null, result: { success: true }, id: 2 });
    expect(await ask(api, "queue.consume", ["foo"], 3)).toEqual({ error: { code: 202, message: "already consuming topic foo" }, id: 3 });

    const user = await Client.open(e.chatUrl);
    user.send("test");
    const event = await api.until((m) => m.event === "queue.consume");
    expect(event).toEqual({
      event: "queue.consume",
      result: { client_id: expect.stringMatching(/^\d+$/), queue: "foo", data: { msg: { type: "text", data: "test", finish: true }, ctx: [] } }, // an empty table is [], as in the docs
      id: null,
    });
    const id = event.result.client_id;

    expect(await ask(api, "mesh.send", [{ client_id: id, data: "hello, world!" }], 4)).toEqual({ error: null, result: { fail: 0, success: true, total: 1 }, id: 4 });
    expect(await user.next()).toBe("hello, world!");
    // The PHP client's shape: params an object, the client id a number.
    expect(await ask(api, "conn.call", { client_id: Number(id), func: "subscribe", args: ["channel1"] }, 5)).toEqual({ error: null, result: { success: true }, id: 5 });
    expect(await ask(api, "conn.call", [{ client_id: id, func: "set_context_value", args: ["user_id", 10000] }], 6)).toEqual({ error: null, result: { success: true }, id: 6 });
    expect(await ask(api, "mesh.publish", [{ channel: "channel1", data: "123456789" }], 7)).toEqual({ error: null, result: { fail: 0, success: true, total: 1 }, id: 7 });
    expect(await user.next()).toBe("123456789");

    user.send("again");
    expect((await api.until((m) => m.event === "queue.consume")).result.data.ctx).toEqual({ user_id: 10000 });

    expect(await ask(api, "mesh.send", { client_id: 2 ** 36 + 99_999, data: "x" } /* node 1, never connected */, 8)).toEqual({ error: { code: 401, message: expect.stringContaining("not found") }, id: 8 });
    expect(await ask(api, "queue.unconsume", [], 9)).toEqual({ error: null, result: { success: true }, id: 9 });
    expect(await ask(api, "queue.unconsume", [], 10)).toEqual({ error: { code: 203, message: "not consuming any topic" }, id: 10 });
    expect(await ask(api, "queue.pull", [], 11)).toEqual({ error: { code: 101, message: 'unknown method: "queue.pull"' }, id: 11 });
  });
});
