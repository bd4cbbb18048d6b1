// The reference for bench/mesh.ts's cross-node send: the same hops and processes with Bun alone, no connmix.
//   ROLE=a PORT=7001 LINK=7002 bun raw-bun-relay.ts   a WebSocket server for the client, and the link listener
//   ROLE=b PORT=7003 LINK=7002 bun raw-bun-relay.ts   an API WebSocket server, connected to A's link
// The client sends "id" to A and gets "ok 1". B takes `{"m":"mesh.send","p":{"d":data},"i":id}`, sends
// data to A over TCP in a length-prefixed frame (u32 length | u32 request | data), and answers
// `{"E":null,"r":true,"i":id}` when A's reply (u32 length | u32 request) comes back; A sends data to the client.
import type { Socket } from "bun";
import { FrameReader } from "../src/net/frames.ts";

const PORT = Number(process.env.PORT);
const LINK = Number(process.env.LINK);
const hostname = "127.0.0.1";
const decoder = new TextDecoder();
const encoder = new TextEncoder();

function frame(req: number, data: Uint8Array): Uint8Array {
  const f = new Uint8Array(8 + data.length);
  const v = new DataView(f.buffer);
  v.setUint32(0, 4 + data.length);
  v.setUint32(4, req);
  f.set(data, 8);
  return f;
}

/** Writes a whole frame; loopback at the benchmark's rate never fills the socket, so a short write ends the run. */
function write(socket: Socket<unknown>, f: Uint8Array): void {
  if (socket.write(f) !== f.length) throw new Error("raw-bun-relay: the link's socket buffer is full");
}

const requestOf = (f: Uint8Array) => new DataView(f.buffer, f.byteOffset).getUint32(0);
const upgrade = (req: Request, srv: Bun.Server<undefined>) => (srv.upgrade(req) ? undefined : new Response("upgrade required", { status: 426 }));

if (process.env.ROLE === "a") {
  let target: Bun.ServerWebSocket<undefined> | null = null;
  Bun.serve({
    hostname, port: PORT, fetch: upgrade,
    websocket: { message(ws) { target = ws; ws.send("ok 1"); } },
  });
  Bun.listen<FrameReader>({
    hostname, port: LINK,
    socket: {
      open(s) {
        s.data = new FrameReader((f) => {
          target?.send(decoder.decode(f.subarray(4)));
          write(s, frame(requestOf(f), new Uint8Array(0)));
        });
      },
      data(s, chunk) { s.data.push(chunk); },
    },
  });
} else {
  const waiting = new Map<number, () => void>();
  let lastReq = 0;
  const reader = new FrameReader((f) => {
    const req = requestOf(f);
    waiting.get(req)?.();
    waiting.delete(req);
  });
  const link = await Bun.connect({
    hostname, port: LINK,
    socket: { data(_s, chunk) { reader.push(chunk); } },
  });
  Bun.serve({
    hostname, port: PORT, fetch: upgrade,
    websocket: {
      message(ws, raw) {
        const { p, i } = JSON.parse(String(raw)) as { p: { d: string }; i: number };
        const req = ++lastReq;
        waiting.set(req, () => ws.send(`{"E":null,"r":true,"i":${i}}`));
        write(link, frame(req, encoder.encode(p.d)));
      },
    },
  });
}
console.log(`raw bun relay ${process.env.ROLE} on ${PORT}`);
