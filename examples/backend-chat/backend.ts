// The backend of the backend-chat example, on the TypeScript SDK (sdk/typescript): consumes queue "chat"
// on every engine (found through the center, followed as engines come and go) and answers each frame.
//   login {name}  → conn.call subscribe(ROOM), conn.call set_context_value("uid", name) (this releases the
//                   script's wait_context_value), mesh.send {"op":"login","status":"success","uid":name},
//                   mesh.publish {"op":"joined","name":name}
//   send {msg}    → mesh.publish {"op":"message","from":uid,"msg":msg} to everyone logged in
// Usage: bun examples/backend-chat/backend.ts [path/to/connmix.yaml]
import { Connmix, type QueueItem } from "../../sdk/typescript/index.ts";
import { readExampleConfig } from "../lib/connmix-api.ts";

const ROOM = "chat:lobby";
const NAME = /^[A-Za-z0-9_]{1,20}$/;
const MAX_MESSAGE = 500;

interface ChatItem {
  uid?: string;
  frame: { op?: unknown; name?: unknown; msg?: unknown };
}

const { center } = readExampleConfig(process.argv[2] ?? "examples/backend-chat/connmix.yaml");
const cm = new Connmix({
  center,
  onEvent: (event, node, detail) => {
    if (event === "up") console.log(`consuming queue chat on ${node.api_server}`);
    else console.log(`engine ${node.api_server} ${event}${detail ? `: ${detail}` : ""}`);
  },
});

async function handle(item: QueueItem<ChatItem>): Promise<void> {
  const client = cm.conn(item.c);
  const { uid, frame } = item.d;
  const reply = (d: object) => cm.send(item.c, JSON.stringify(d));
  const publish = (d: object) => cm.publish(ROOM, JSON.stringify(d));

  switch (frame.op) {
    case "login": {
      if (uid) return void (await reply({ op: "login", status: "error", msg: `already logged in as ${uid}` }));
      const name = frame.name;
      if (typeof name !== "string" || !NAME.test(name)) {
        await client.setContextValue("uid", false); // releases the script's wait; the client may try again
        return void (await reply({ op: "login", status: "error", msg: "name: 1-20 letters, digits or _" }));
      }
      await client.subscribe(ROOM);
      await client.setContextValue("uid", name);
      await reply({ op: "login", status: "success", uid: name });
      await publish({ op: "joined", name });
      console.log(`login ${name} (client ${item.c})`);
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

// The center may start after us (examples/run.ts starts both at once): retry until it answers.
for (;;) {
  try {
    await cm.start();
    break;
  } catch {
    await Bun.sleep(300);
  }
}
// Items of one engine are handled one at a time, in order (a login completes before that client's next frame).
cm.consume<ChatItem>(["chat"], handle, { onError: (e, item) => console.error(`client ${item.c}: ${(e as Error).message}`) });
