// Closed-loop HTTP publisher: keeps CONCURRENCY POSTs in flight to URL until COUNT publishes are done
// (or SECONDS pass), body BODY.
//   bun publisher.ts http://127.0.0.1:6789/v1/mesh/publish '{"c":"room:1","d":"hi"}' [concurrency 4] [count 200] [seconds 60]
const [url, body, c = "4", n = "200", s = "60"] = process.argv.slice(2);
const count = Number(n); let started = 0, done = 0, errors = 0; const until = performance.now() + Number(s) * 1000;
const t0 = performance.now();
async function worker() {
  while (started < count && performance.now() < until) {
    started++;
    try { const r = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json" } }); await r.text(); if (!r.ok) errors++; done++; }
    catch { errors++; await Bun.sleep(10); }
  }
}
await Promise.all(Array.from({ length: Number(c) }, worker));
console.log(JSON.stringify({ publishes: done, errors, per_s: Math.round(done / ((performance.now() - t0) / 1000)) }));

export {}; // a module: its top-level names and awaits are its own
