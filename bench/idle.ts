// Idle memory: resident memory per open WebSocket connection, connmix against the raw-Bun server.
//   bun bench/idle.ts [--conns 15000] [--hold 5]
// Needs about conns + 100 file descriptors per process (check `ulimit -n`).
import { arg, startConnmix, startRawBun, stop, wsload } from "./lib";

const conns = arg("conns", 15000);
const load = ["--conns", String(conns), "--hold", String(arg("hold", 5)), "--hosts", "4"];

// wsload spreads idle connections over 127.0.0.1-4, so the Lua server listens on all addresses.
const connmix = await startConnmix("function on_message(msg, conn) conn:send(msg.data) end\n", "", "0.0.0.0");
const raw = await startRawBun();
try {
  const r = await wsload(["idle", raw.url, ...load, "--pid", String(raw.proc.pid)]);
  const c = await wsload(["idle", connmix.url, ...load, "--pid", String(connmix.proc.pid)]);
  console.error(JSON.stringify(r));
  console.error(JSON.stringify(c));
  console.log(JSON.stringify({ bench: "idle", conns, raw_kib_per_conn: r.kib_per_conn, connmix_kib_per_conn: c.kib_per_conn, connmix_opened: c.opened, connmix_failed: c.failed }));
} finally {
  stop(connmix.proc, raw.proc);
}
