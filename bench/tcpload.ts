// Line-echo load generator over TCP (bun): every connection keeps WINDOW newline-terminated lines in flight
// and sends one more for each line it gets back; counts lines per second. Prints one JSON line.
//   bun tcpload.ts PORT [--conns 100] [--window 16] [--seconds 5] [--skip 0]
// --skip: lines each connection gets before its window starts (a greeting of the server's) and does not count.
import { arg } from "./lib";

const port = Number(process.argv[2]);
const [conns, window, seconds, skip] = [arg("conns", 100), arg("window", 16), arg("seconds", 5), arg("skip", 0)];
const LINE = Buffer.from("hello world 123\n");
const lines = (n: number) => Buffer.concat(Array.from({ length: n }, () => LINE));
let counted = 0;
let measuring = false;
const clients: { socket: Bun.Socket<undefined>; skip: number }[] = [];
for (let i = 0; i < conns; i++) {
  const client = { socket: null as unknown as Bun.Socket<undefined>, skip };
  client.socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(s, chunk) {
        let n = 0;
        for (let j = chunk.indexOf(10); j >= 0; j = chunk.indexOf(10, j + 1)) n++;
        const skipped = Math.min(n, client.skip);
        client.skip -= skipped;
        n -= skipped;
        if (n === 0) return;
        if (measuring) counted += n;
        s.write(lines(n));
      },
    },
  });
  clients.push(client);
}
await Bun.sleep(200);
for (const c of clients) c.socket.write(lines(window));
await Bun.sleep(500); // warm-up
measuring = true;
const start = performance.now();
await Bun.sleep(seconds * 1000);
const msgs = Math.round(counted / ((performance.now() - start) / 1000));
console.log(JSON.stringify({ mode: "tcp-echo", port, conns, window, seconds, msgs_per_s: msgs }));
process.exit(0);
