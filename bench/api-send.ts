// mesh.send over /ws/v1: API connections keep WINDOW requests each in flight to one chat client of a real
// `connmix single`; counts answered requests (and frames the client received) per second. The same client
// code against bench/raw-bun-echo.ts (each frame echoed, no work) gives the ceiling.
//   bun bench/api-send.ts [--conns 4] [--window 64] [--seconds 5]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../test/helpers/process.ts";
import { arg, open, startConnmix, startRawBun, stop } from "./lib";

const conns = arg("conns", 4);
const window = arg("window", 64);
const seconds = arg("seconds", 5);

/** Joins room 1 and learns this client's id from its own chat message. */
async function chatClient(url: string): Promise<{ ws: WebSocket; id: string; received: () => number }> {
  const ws = await open(url);
  let count = 0;
  const id = await new Promise<string>((resolve) => {
    ws.onmessage = (e) => {
      const m = JSON.parse(String(e.data));
      if (m.client_id !== undefined) resolve(String(m.client_id));
    };
    ws.send('{"op":"join","room_id":1}');
    ws.send('{"op":"send","msg":"who am i"}');
  });
  ws.onmessage = () => void count++;
  return { ws, id, received: () => count };
}

/** Keeps `window` copies of `request` in flight on each of `conns` connections; returns answers per second. */
async function requestsPerSecond(url: string, request: string): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: conns }, () => open(url)));
  let answered = 0;
  for (const ws of sockets) {
    ws.onmessage = () => {
      answered++;
      ws.send(request);
    };
    for (let i = 0; i < window; i++) ws.send(request);
  }
  await Bun.sleep(500);
  const a0 = answered;
  const t0 = performance.now();
  await Bun.sleep(seconds * 1000);
  const rate = (answered - a0) / ((performance.now() - t0) / 1000);
  for (const ws of sockets) ws.close();
  return Math.round(rate);
}

const engine = await startConnmix(readFileSync(join(ROOT, "lua/entry.websocket.lua"), "utf8"));
const raw = await startRawBun();
try {
  const target = await chatClient(engine.url);
  const request = JSON.stringify({ m: "mesh.send", p: { c: target.id, d: "hi" }, i: 1 });
  const before = target.received();
  const api = await requestsPerSecond(`ws://127.0.0.1:${engine.api}/ws/v1`, request);
  const delivered = target.received() - before;
  const echo = await requestsPerSecond(raw.url, request);
  target.ws.close();
  console.log(JSON.stringify({ conns, window, seconds, mesh_send_per_s: api, raw_bun_echo_per_s: echo, ratio: Number((api / echo).toFixed(2)), delivered_to_client: delivered }));
} finally {
  stop(engine.proc, raw.proc);
}
