// The ceiling for this stack: Bun's own WebSocket server with no Lua and no routing.
//   PORT=7001 bun raw-bun-echo.ts
// Every text frame is echoed; a frame starting with "sub" subscribes the socket to topic "room";
// POST /publish publishes its body to "room" (native fan-out), answering the subscriber count.
const server = Bun.serve({
  port: Number(process.env.PORT ?? 7001),
  async fetch(req, srv) {
    if (new URL(req.url).pathname === "/publish") {
      const body = await req.text();
      srv.publish("room", body);
      return new Response(String(srv.subscriberCount("room")));
    }
    if (srv.upgrade(req)) return;
    return new Response("upgrade required", { status: 426 });
  },
  websocket: {
    message(ws, m) {
      if (typeof m === "string" && m.startsWith("sub")) { ws.subscribe("room"); ws.send("ok"); return; }
      ws.send(m);
    },
  },
});
console.log(`raw bun echo on ${server.port}`);

export {}; // a module: its top-level names and awaits are its own
