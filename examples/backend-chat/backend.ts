// The backend of the backend-chat example: consumes queue "chat" on every engine (found through the
// center) and answers each frame over the same /ws/v1 connection.
//   login {name}  → conn.call subscribe(ROOM), conn.call set_context_value("uid", name) (this releases the
//                   script's wait_context_value), mesh.send {"op":"login","status":"success","uid":name},
//                   mesh.publish {"op":"joined","name":name}
//   send {msg}    → mesh.publish {"op":"message","from":uid,"msg":msg} to everyone logged in
// Usage: bun examples/backend-chat/backend.ts [path/to/connmix.yaml]
import { EngineApi, engineApis, readExampleConfig, type QueueItem } from "../lib/connmix-api.ts";

const ROOM = "chat:lobby";
const NAME = /^[A-Za-z0-9_]{1,20}$/;
const MAX_MESSAGE = 500;

interface ChatItem {
  uid?: string;
  frame: { op?: unknown; name?: unknown; msg?: unknown };
}

async function handle(api: EngineApi, item: QueueItem): Promise<void> {
  const client = item.c;
  const { uid, frame } = item.d as ChatItem;
  const reply = (d: object) => api.call("mesh.send", { c: client, d: JSON.stringify(d) });
  const publish = (d: object) => api.call("mesh.publish", { c: ROOM, d: JSON.stringify(d) });
  const setUid = (v: string | false) => api.call("conn.call", { c: client, f: "set_context_value", a: ["uid", v] });

  switch (frame.op) {
    case "login": {
      if (uid) return void (await reply({ op: "login", status: "error", msg: `already logged in as ${uid}` }));
      const name = frame.name;
      if (typeof name !== "string" || !NAME.test(name)) {
        await setUid(false); // releases the script's wait; the client may try again
        return void (await reply({ op: "login", status: "error", msg: "name: 1-20 letters, digits or _" }));
      }
      await api.call("conn.call", { c: client, f: "subscribe", a: [ROOM] });
      await setUid(name);
      await reply({ op: "login", status: "success", uid: name });
      await publish({ op: "joined", name });
      console.log(`login ${name} (client ${client})`);
      return;
    }
    case "send": {
      if (!uid) return void (await reply({ op: "send", status: "error", msg: "login first" }));
      if (typeof frame.msg !== "string" || frame.msg === "" || frame.msg.length > MAX_MESSAGE) {
        return void (await reply({ op: "send", status: "error", msg: `msg: 1-${MAX_MESSAGE} characters` }));
      }
      await publish({ op: "message", from: uid, msg: frame.msg });
      return;
    }
    default:
      await reply({ op: "error", msg: `unknown op: ${String(frame.op)}` });
  }
}

/** Consumes "chat" on one engine until its connection closes. Items are handled in order. */
async function consume(url: string): Promise<void> {
  const api = await EngineApi.open(url);
  let chain = Promise.resolve();
  api.onItem = (item) => {
    chain = chain.then(() => handle(api, item)).catch((e) => {
      console.error(`client ${item.c}: ${(e as Error).message}`);
    });
  };
  await api.call("queue.pop", { t: ["chat"] });
  console.log(`consuming queue chat on ${url}`);
  await api.closed;
}

// Engines come and go: look at the center's list every few seconds and consume on each new one.
const { center } = readExampleConfig(process.argv[2] ?? "examples/backend-chat/connmix.yaml");
const consuming = new Set<string>();
for (;;) {
  for (const url of await engineApis(center)) {
    if (consuming.has(url)) continue;
    consuming.add(url);
    consume(url)
      .catch((e) => console.error((e as Error).message))
      .finally(() => consuming.delete(url));
  }
  await Bun.sleep(consuming.size ? 3000 : 300);
}
