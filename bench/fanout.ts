// Fan-out through the API: CONNS WebSocket clients join room 1 of lua/entry.websocket.lua on a real
// `connmix single`, then K publishes go to POST /v1/mesh/publish; the same run does the same against
// ../shared/bench/raw-bun-echo.ts (Bun's own publish, no Lua, no API). Prints deliveries/s and the ratio.
//   bun bench/fanout.ts [--conns 2000] [--messages 200] [--rounds 3]
import { spawn } from "bun";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { BUN, ROOT, SHARED_BENCH, startConnmix, startRawBun, stop } from "./lib";

const arg = (name: string, d: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const conns = arg("conns", 2000);
const messages = arg("messages", 200);
const rounds = arg("rounds", 3);

/** Subscribes `conns` clients with `hello`, publishes `messages` times, returns deliveries per second. */
async function fanout(url: string, hello: string, publishUrl: string, body: string): Promise<number> {
  const load = spawn([BUN, join(SHARED_BENCH, "wsload.ts"), "fanout", url, "--conns", String(conns), "--expect", String(messages), "--hello", hello], {
    stdout: "pipe",
    stderr: "pipe",
  });
  // wsload prints {"ready":N,"failed":F} on stderr once every client is subscribed.
  const reader = load.stderr.getReader();
  let err = "";
  while (!err.includes('"ready"')) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`wsload ended early: ${err}`);
    err += new TextDecoder().decode(value);
  }
  const ready = JSON.parse(err.slice(err.indexOf("{")).split("\n")[0]!);
  if (ready.ready !== conns) throw new Error(`only ${ready.ready} of ${conns} clients subscribed`);
  const pub = spawn([BUN, join(SHARED_BENCH, "publisher.ts"), publishUrl, body, "4", String(messages)], { stdout: "pipe", stderr: "inherit" });
  const [out, pubOut] = await Promise.all([new Response(load.stdout).text(), new Response(pub.stdout).text()]);
  const result = JSON.parse(out.trim().split("\n").pop()!);
  const published = JSON.parse(pubOut.trim());
  if (!result.complete || published.errors) throw new Error(`incomplete run: ${out} ${pubOut}`);
  return result.deliveries_per_s;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const engine = await startConnmix(readFileSync(join(ROOT, "lua/entry.websocket.lua"), "utf8"));
const raw = await startRawBun();
const results = { connmix: [] as number[], raw: [] as number[] };
try {
  for (let r = 0; r < rounds; r++) {
    results.connmix.push(await fanout(engine.url, '{"op":"join","room_id":1}', `http://127.0.0.1:${engine.api}/v1/mesh/publish`, '{"c":"room:1","d":"hi"}'));
    results.raw.push(await fanout(raw.url, "sub", `http://127.0.0.1:${raw.port}/publish`, "hi"));
    console.error(`round ${r + 1}: connmix ${results.connmix[r]} /s, raw bun ${results.raw[r]} /s`);
  }
} finally {
  stop(engine.proc, raw.proc);
}
const connmix = median(results.connmix);
const rawBun = median(results.raw);
console.log(JSON.stringify({ conns, messages, rounds, connmix_deliveries_per_s: connmix, raw_bun_deliveries_per_s: rawBun, ratio: Number((connmix / rawBun).toFixed(2)) }));
