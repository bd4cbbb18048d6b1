// The read batch and the outbox under load with faults: clients that vanish mid-burst (reset, or a close frame
// right behind their messages) and a script that closes connections from inside a batch, while steady clients
// keep echoing. Nothing may hang, leak a connection or lose a steady client's reply, and no error is logged.
import { afterAll, expect, test } from "bun:test";
import { connect } from "node:net";
import { cleanupAll } from "../helpers/files";
import { captureLog } from "../helpers/log";
import { startEngine } from "../helpers/engine";
import { Client } from "../helpers/ws";
import { until } from "../helpers/wait";
import { maskedFrame as frame } from "./helpers";

afterAll(cleanupAll);
const readLog = captureLog();

const ENTRY = `
function on_message(msg, conn)
  if msg.data == "kick" then return conn:close() end
  conn:send(msg.data)
  if msg.data:sub(1, 3) == "pub" then mix.mesh.publish("all", msg.data) end
end
function on_handshake(id, headers, server, conn) conn:subscribe("all") end
`;

/** Upgrades a raw socket, writes `burst` right after the 101, then ends it as `how` says. */
function vanishing(port: number, burst: Buffer, how: "reset" | "close-frame" | "none"): Promise<void> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1");
    let upgraded = false;
    sock.on("error", () => resolve());
    sock.on("close", () => resolve());
    sock.on("connect", () =>
      sock.write(`GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    sock.on("data", (chunk: Buffer) => {
      if (upgraded || !chunk.includes("\r\n\r\n")) return;
      upgraded = true;
      if (how === "close-frame") sock.end(Buffer.concat([burst, Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8])]));
      else if (how === "reset") {
        sock.write(burst);
        sock.resetAndDestroy();
      } else sock.write(burst);
    });
  });
}

test("steady clients get every reply in order while others reset, close mid-burst or are kicked", async () => {
  const { port, url, engine } = await startEngine(ENTRY);
  const steady = await Promise.all(Array.from({ length: 10 }, () => Client.open(url)));
  const rounds = 30;
  const perRound = 20;
  let faults: Promise<void>[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [i, c] of steady.entries()) for (let k = 0; k < perRound; k++) c.send(`${i}:${r * perRound + k}`);
    const burst = Buffer.concat(Array.from({ length: 50 }, (_, k) => frame(k % 10 === 0 ? `pub${k}` : `x${k}`)));
    faults.push(vanishing(port, burst, "reset"), vanishing(port, burst, "close-frame"));
    faults.push(vanishing(port, Buffer.concat([frame("a"), frame("kick"), burst]), "none"));
    if (faults.length > 30) {
      await Promise.all(faults);
      faults = [];
    }
  }
  await Promise.all(faults);
  const total = rounds * perRound;
  // Publications from the vanishing clients arrive too; the echoes among them keep their order.
  const echoes = (i: number) => steady[i]!.received.filter((m) => typeof m === "string" && m.startsWith(`${i}:`));
  for (let i = 0; i < steady.length; i++) {
    await until(() => echoes(i).length >= total, 15_000, `client ${i}'s ${total} echoes`);
    expect(echoes(i)).toEqual(Array.from({ length: total }, (_, k) => `${i}:${k}`));
  }
  for (const c of steady) c.close();
  await until(() => engine.node.connections.size === 0, 10_000, "every connection to be gone");
  expect(readLog()).not.toMatch(/\tERROR\t/);
  // The kicked clients' messages behind "kick" were read with the close: dropped and counted, not run.
  expect(engine.node.droppedMessages().after_close.websocket).toBeGreaterThan(0);
});
