// WebSocket load generator over raw TCP sockets (bun). One process, cheap per frame, so the server,
// not the client, is what gets measured. Prints one JSON line.
//
//   bun wsload.ts echo   URL [--conns 100] [--window 16] [--seconds 5] [--payload STR] [--first STR] [--wait spin|sleep]
//       closed loop: every connection keeps WINDOW text frames in flight; counts replies per second.
//       --wait spin keeps this process polling its sockets while it measures instead of sleeping in the
//       kernel when no reply is due (sleep, the default). A sleeping load generator on the server's machine
//       charges the server for waking it up: an inter-processor interrupt per wake-up, some 20-30 K/s against
//       a one-worker connmix echo on the 2-CPU development VM, where a server on another machine pays none
//       (docs/runtime.md, "What the load generator costs the server"). Spinning changes the load too (the
//       replies are answered in smaller groups), and on a busy machine it takes CPU from everything else:
//       use it only on a quiet machine, pinned to a CPU of its own, as a second measure beside sleep.
//       --first sends one frame before the window (e.g. a protocol's connect packet).
//       --reply-prefix STR: only frames whose payload starts with STR are replies (each is answered with a new
//       frame); the others (e.g. room messages) are counted as deliveries_per_s.
//   bun wsload.ts fanout URL [--conns 1000] [--expect K] [--hello STR] [--frame-bytes N] [--timeout 60]
//       subscribers only: each connection sends HELLO once (e.g. a join message) and waits for one
//       reply; then run a publisher elsewhere that publishes K messages. The clock runs from the
//       first delivery until every connection holds K (so buffering inside the server is paid
//       for): deliveries/s = conns × K / elapsed. With --frame-bytes (one delivered frame's size,
//       header included) it counts bytes, which keeps the client far cheaper than the server.
//       Prints {"ready":...} on stderr when subscribed.
//   bun wsload.ts idle   URL [--conns 10000] [--hosts 4] [--hold 5] [--pid PID]
//       opens CONNS idle connections spread over 127.0.0.1..127.0.0.HOSTS (more than one
//       source/destination pair is needed past ~28k connections), holds them, and reports the
//       server's resident memory (VmRSS of PID) before and after, per connection.
//
// URL may point at any path: ws://127.0.0.1:6790/chat. Only plain ws:// is supported.
// Many connections need many descriptors on both sides: run under `ulimit -n 200000`.

type Opts = Record<string, string>;
const [mode = "echo", url = "", ...rest] = process.argv.slice(2);
const opt: Opts = {};
for (let i = 0; i < rest.length; i += 2) opt[rest[i].replace(/^--/, "")] = rest[i + 1];
if (!url.startsWith("ws://")) {
  console.error("usage: bun wsload.ts echo|fanout|idle ws://host:port/path [--conns N] ...");
  process.exit(2);
}
const u = new URL(url);
const num = (k: string, d: number) => (opt[k] === undefined ? d : Number(opt[k]));

function maskedTextFrame(p: Buffer): Buffer {
  const len = p.length;
  const hdr =
    len < 126 ? [0x81, 0x80 | len] : len < 65536 ? [0x81, 0x80 | 126, len >> 8, len & 255] : null;
  if (!hdr) throw new Error("payload too large for this tool");
  return Buffer.concat([Buffer.from(hdr), Buffer.from([0x12, 0x34, 0x56, 0x78]), maskBytes(p)]);
}
function maskBytes(p: Buffer): Buffer {
  const m = [0x12, 0x34, 0x56, 0x78];
  const out = Buffer.allocUnsafe(p.length);
  for (let i = 0; i < p.length; i++) out[i] = p[i] ^ m[i & 3];
  return out;
}
const upgradeRequest = (host: string) =>
  `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

type St = { up: boolean; buf: Buffer | null; got: number; bytes: number };
type Sock = import("bun").Socket<St>;

/** Opens `count` connections; calls onFrames(sock, n) whenever n whole frames arrived. */
async function openAll(count: number, hosts: number, onFrames: (s: Sock, n: number) => void) {
  const socks: Sock[] = [];
  let failed = 0;
  let opened = 0;
  const batch = 500; // connect in waves so the listen backlog is not overrun
  for (let start = 0; start < count; start += batch) {
    const wave: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) {
      const hostname = hosts > 1 ? `127.0.0.${1 + (i % hosts)}` : u.hostname;
      wave.push(
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => { failed++; resolve(); }, 10000);
          Bun.connect<St>({
            hostname, port: Number(u.port || 80), data: { up: false, buf: null, got: 0, bytes: 0 },
            socket: {
              open(s) { s.write(upgradeRequest(`${hostname}:${u.port}`)); },
              data(s, chunk) {
                if (countBytes && s.data.up) { s.data.bytes += chunk.length; return; }
                let b = s.data.buf ? Buffer.concat([s.data.buf, chunk]) : Buffer.from(chunk);
                let off = 0;
                if (!s.data.up) {
                  const e = b.indexOf("\r\n\r\n");
                  if (e < 0) { s.data.buf = b; return; }
                  clearTimeout(timer);
                  if (!b.subarray(0, 16).toString().includes(" 101")) { failed++; s.end(); resolve(); return; }
                  s.data.up = true; off = e + 4; socks.push(s); opened++; resolve();
                  if (countBytes) { s.data.bytes += b.length - off; return; }
                }
                let n = 0;
                while (b.length - off >= 2) {
                  let len = b[off + 1] & 127, h = 2;
                  if (len === 126) { if (b.length - off < 4) break; len = b.readUInt16BE(off + 2); h = 4; }
                  else if (len === 127) { if (b.length - off < 10) break; len = Number(b.readBigUInt64BE(off + 2)); h = 10; }
                  if (b.length - off < h + len) break;
                  if (replyPrefix && (len < replyPrefix.length || b.compare(replyPrefix, 0, replyPrefix.length, off + h, off + h + replyPrefix.length) !== 0)) others++;
                  else n++;
                  off += h + len;
                }
                s.data.buf = off < b.length ? b.subarray(off) : null;
                if (n) { s.data.got += n; onFrames(s, n); }
              },
              close() {}, error() {},
            },
          }).catch(() => { clearTimeout(timer); failed++; resolve(); });
        }),
      );
    }
    await Promise.all(wave);
  }
  return { socks, failed, opened };
}

function rssKiB(pid: string): number {
  try {
    const m = require("fs").readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
    return m ? Number(m[1]) : NaN;
  } catch { return NaN; }
}

/** Returns after `ms`; "spin" keeps the event loop turning (setImmediate polls the sockets without blocking). */
async function measuring(ms: number, wait: string): Promise<void> {
  if (wait === "sleep") return Bun.sleep(ms);
  if (wait !== "spin") throw new Error(`--wait takes spin or sleep, not ${wait}`);
  const end = performance.now() + ms;
  while (performance.now() < end) await new Promise((resolve) => setImmediate(resolve));
}

const seconds = num("seconds", 5);
const replyPrefix = opt["reply-prefix"] ? Buffer.from(opt["reply-prefix"]) : null;
let others = 0;
const frameBytes = num("frame-bytes", 0);
let countBytes = false;
if (mode === "echo") {
  const conns = num("conns", 100), window = num("window", 16);
  const payload = Buffer.from(opt.payload ?? '{"op":"send","msg":"hello world","room_id":1002}');
  const one = maskedTextFrame(payload);
  const batches = Array.from({ length: Math.max(window, 64) + 1 }, (_, k) => Buffer.concat(Array(k).fill(one)));
  let total = 0, started = false;
  const { socks, failed } = await openAll(conns, 1, (s, n) => {
    if (!started) return; // greetings before the window are not replies
    total += n;
    for (let g = n; g > 0; g -= 64) s.write(batches[Math.min(g, 64)]);
  });
  if (opt.first) { const f = maskedTextFrame(Buffer.from(opt.first)); for (const s of socks) s.write(f); await Bun.sleep(200); }
  started = true;
  for (const s of socks) s.write(batches[window]);
  await Bun.sleep(500);
  const n0 = total, o0 = others, t0 = performance.now();
  await measuring(seconds * 1000, opt.wait ?? "sleep");
  const dt = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ mode, url, conns, window, bytes: payload.length, msgs_per_s: Math.round((total - n0) / dt),
    ...(replyPrefix ? { deliveries_per_s: Math.round((others - o0) / dt) } : {}), failed }));
  process.exit(0);
} else if (mode === "fanout") {
  const conns = num("conns", 1000), expect = num("expect", 1000), limit = num("timeout", 60) * 1000;
  const hello = opt.hello ? maskedTextFrame(Buffer.from(opt.hello)) : null;
  const { socks, failed } = await openAll(conns, num("hosts", 1), () => {});
  if (hello) for (const s of socks) s.write(hello);
  const t_ready = performance.now();
  while (hello && socks.some((s) => s.data.got < 1) && performance.now() - t_ready < 10000) await Bun.sleep(20);
  for (const s of socks) { s.data.got = 0; s.data.bytes = 0; }
  if (frameBytes > 0) countBytes = true;
  const have = (s: Sock) => (countBytes ? s.data.bytes / frameBytes : s.data.got);
  console.error(JSON.stringify({ ready: socks.length, failed }));
  let tFirst = 0; const t0 = performance.now();
  while (performance.now() - t0 < limit) {
    if (!tFirst && socks.some((s) => have(s) > 0)) tFirst = performance.now();
    if (tFirst && socks.every((s) => have(s) >= expect)) break;
    await Bun.sleep(5);
  }
  const tDone = performance.now(); const got = socks.reduce((a, s) => a + Math.min(have(s), expect), 0);
  const complete = got === socks.length * expect;
  console.log(JSON.stringify({ mode, url, conns, expect, complete, delivered: Math.round(got),
    seconds: Number(((tDone - tFirst) / 1000).toFixed(3)), deliveries_per_s: tFirst ? Math.round(got / ((tDone - tFirst) / 1000)) : 0, failed }));
  process.exit(0);
} else if (mode === "idle") {
  const conns = num("conns", 10000), pid = opt.pid ?? "";
  if (!pid) { console.error("idle needs --pid of the server process"); process.exit(2); }
  const before = rssKiB(pid);
  const { opened, failed } = await openAll(conns, num("hosts", 4), () => {});
  await Bun.sleep(num("hold", 5) * 1000);
  const after = rssKiB(pid);
  console.log(JSON.stringify({ mode, url, conns, opened, failed, rss_before_kib: before, rss_after_kib: after,
    kib_per_conn: Number(((after - before) / Math.max(opened, 1)).toFixed(2)) }));
  process.exit(0);
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

export {}; // a module: its top-level names and awaits are its own
