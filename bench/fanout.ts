// Fan-out through the API: CONNS WebSocket clients join room 1 of lua/entry.websocket.lua on a real
// `connmix single`, then K publishes go to POST /v1/mesh/publish; the same run does the same against
// bench/raw-bun-echo.ts (Bun's own publish, no Lua, no API). Prints deliveries/s and the ratio.
//   bun bench/fanout.ts [--conns 2000] [--messages 200] [--rounds 3]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../test/helpers/process.ts";
import { arg, fanout, median, startConnmix, startRawBun, stop } from "./lib";

const conns = arg("conns", 2000);
const messages = arg("messages", 200);
const rounds = arg("rounds", 3);

const engine = await startConnmix(readFileSync(join(ROOT, "lua/entry.websocket.lua"), "utf8"));
const raw = await startRawBun();
const results = { connmix: [] as number[], raw: [] as number[] };
try {
  for (let r = 0; r < rounds; r++) {
    results.connmix.push(await fanout({
      url: engine.url, conns, hello: '{"op":"join","room_id":1}', publishUrl: `http://127.0.0.1:${engine.api}/v1/mesh/publish`, body: '{"c":"room:1","d":"hi"}', messages,
    }));
    results.raw.push(await fanout({ url: raw.url, conns, hello: "sub", publishUrl: `http://127.0.0.1:${raw.port}/publish`, body: "hi", messages }));
    console.error(`round ${r + 1}: connmix ${results.connmix[r]} /s, raw bun ${results.raw[r]} /s`);
  }
} finally {
  stop(engine.proc, raw.proc);
}
const connmix = median(results.connmix);
const rawBun = median(results.raw);
console.log(JSON.stringify({ conns, messages, rounds, connmix_deliveries_per_s: connmix, raw_bun_deliveries_per_s: rawBun, ratio: Number((connmix / rawBun).toFixed(2)) }));
