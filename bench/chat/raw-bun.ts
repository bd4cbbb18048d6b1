// The Lua-heavy benchmark's logic (bench/chat/connmix.lua) in plain Bun, no Lua: the ceiling for this stack.
//   PORT=7001 ROOMS=10 bun bench/chat/raw-bun.ts
type Client = { id: number; room: string | null };
const rooms = Number(process.env.ROOMS ?? 10);
let joined = 0;
let ids = 0;
const server = Bun.serve<Client>({
  port: Number(process.env.PORT ?? 7001),
  fetch(req, srv) {
    if (srv.upgrade(req, { data: { id: ++ids, room: null } })) return;
    return new Response("upgrade required", { status: 426 });
  },
  websocket: {
    message(ws, m) {
      let data: { op?: string; msg?: unknown } | null = null;
      try { data = JSON.parse(String(m)); } catch { /* answered below */ }
      if (!data) return void ws.send(JSON.stringify({ status: "error" }));
      if (data.op === "join") {
        joined++;
        ws.data.room = "room:" + (joined % rooms);
        ws.subscribe(ws.data.room);
      } else if (data.op === "send" && ws.data.room) {
        server.publish(ws.data.room, JSON.stringify({ client_id: ws.data.id, msg: data.msg }));
      }
      ws.send(JSON.stringify({ status: "success" }));
    },
  },
});
console.log(`raw bun chat on ${server.port}`);

export {}; // a module: its top-level names and awaits are its own
