// Feeds the exchange example: a random walk of prices for a few symbols on the public streams, and
// account updates for one demo user on its private streams, published as {"stream","data"} to channel
// "ex:<stream>" through one engine's /ws/v1 (mesh.publish reaches subscribers on every engine).
// Prints a login token for the demo user.
// Usage: bun examples/exchange/publisher.ts [path/to/connmix.yaml]
import { createHash } from "node:crypto";
import { EngineApi, engineApis, readExampleConfig } from "../lib/connmix-api.ts";

const SYMBOLS: Record<string, number> = { btcusdt: 64000, ethusdt: 3200 };
const DEMO_UID = "10001";
const TICK_MS = 500;

const { center, options } = readExampleConfig(process.argv[2] ?? "examples/exchange/connmix.yaml");
const token = `${DEMO_UID}.${createHash("md5").update(`${DEMO_UID}:${options.auth_secret}`).digest("hex")}`;
console.log(`demo login: {"op":"auth","token":"${token}"}`);

const round = (n: number) => Math.round(n * 100) / 100;
const price: Record<string, number> = { ...SYMBOLS };
const kline: Record<string, { t: number; o: number; h: number; l: number; c: number; v: number }> = {};

/** One tick's messages: stream name → data. */
function tick(now: number, n: number): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (const s of Object.keys(SYMBOLS)) {
    const p = (price[s] = round(price[s]! * (1 + (Math.random() - 0.5) / 500)));
    const qty = round(Math.random() * 2);
    const minute = now - (now % 60000);
    const k = kline[s]?.t === minute ? kline[s]! : (kline[s] = { t: minute, o: p, h: p, l: p, c: p, v: 0 });
    Object.assign(k, { h: Math.max(k.h, p), l: Math.min(k.l, p), c: p, v: round(k.v + qty) });
    out.push(
      [`${s}@trades`, { p, q: qty, side: Math.random() < 0.5 ? "buy" : "sell", t: now }],
      [`${s}@ticker`, { c: p, h: k.h, l: k.l, v: k.v, t: now }],
      [`${s}@depth`, {
        bids: [1, 2, 3, 4, 5].map((i) => [round(p - i * p / 10000), round(Math.random() * 5)]),
        asks: [1, 2, 3, 4, 5].map((i) => [round(p + i * p / 10000), round(Math.random() * 5)]),
        t: now,
      }],
      [`${s}@markprice`, { p: round(p * (1 + (Math.random() - 0.5) / 5000)), t: now }],
      [`${s}@kline`, { interval: "1m", ...k }],
    );
  }
  if (n % 4 === 0) {
    const btc = price.btcusdt!;
    out.push(
      [`${DEMO_UID}@balance`, { asset: "USDT", free: round(10000 - btc / 100), locked: round(btc / 100), t: now }],
      [`${DEMO_UID}@position`, { symbol: "btcusdt", qty: 0.5, entry: SYMBOLS.btcusdt, pnl: round((btc - SYMBOLS.btcusdt!) / 2), t: now }],
      [`${DEMO_UID}@order`, { id: n, symbol: "btcusdt", side: "buy", price: round(btc * 0.99), qty: 0.01, status: "NEW", t: now }],
      [`${DEMO_UID}@account`, { equity: round(10000 + (btc - SYMBOLS.btcusdt!) / 2), t: now }],
    );
  }
  return out;
}

async function publishTo(api: EngineApi): Promise<void> {
  console.log(`publishing through ${api.url}`);
  let open = true;
  api.closed.then(() => { open = false; });
  for (let n = 0; open; n++) {
    const sends = tick(Date.now(), n).map(([stream, data]) =>
      api.call("mesh.publish", { c: `ex:${stream}`, d: JSON.stringify({ stream, data }) }),
    );
    await Promise.allSettled(sends);
    await Bun.sleep(TICK_MS);
  }
}

// Publish through the first engine the center lists; when it goes away, take the next.
for (;;) {
  const [url] = await engineApis(center);
  if (url) {
    try {
      await publishTo(await EngineApi.open(url));
    } catch (e) {
      console.error((e as Error).message);
    }
  }
  await Bun.sleep(300);
}
