// Lua-heavy throughput: every frame is JSON-decoded, a table is built and encoded, published to the sender's
// room of 10 and answered (bench/chat/: the same logic on connmix, in plain Bun, and on nginx + LuaJIT with
// lua-cjson). 100 clients join 10 rooms, then each keeps 16 frames in flight; replies/s drive the loop and
// room deliveries are counted beside them. Rounds alternate between the servers; prints medians and ratios.
//   bun bench/chat.ts [--rounds 3] [--seconds 5] [--cpus 1] [--pin 1] [--baseline /other/checkout] [--no-nginx]
//                     [--wait spin|sleep]
// --wait: how the load generator waits for replies (sleep, the default, or spin; see wsload.ts).
// --baseline also runs connmix from another checkout (e.g. a commit before a change), in the same rounds.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, type Subprocess } from "bun";
import { freePort, waitForPort } from "../test/helpers/ports.ts";
import { arg, loadPin, loadWait, option, benchDir, cpuSeconds, median, startConnmix, startRawBun, stop, wsload } from "./lib";

const [rounds, seconds, cpus] = [arg("rounds", 3), arg("seconds", 5), arg("cpus", 1)];
const pin = loadPin();
const baseline = option("baseline");
const wait = loadWait();
const load = ["--conns", "100", "--window", "16", "--seconds", String(seconds), "--first", '{"op":"join"}', "--reply-prefix", '{"status"', "--wait", wait];
const script = readFileSync(join(import.meta.dir, "chat/connmix.lua"), "utf8");

/** nginx with one worker running chat/nginx.lua (needs libnginx-mod-http-lua and lua-cjson: bin/setup --bench). */
async function startNginx(): Promise<{ proc: Subprocess; url: string }> {
  const dir = benchDir("nginx");
  mkdirSync(join(dir, "tmp"));
  const port = freePort();
  writeFileSync(join(dir, "nginx.conf"), `daemon off;
master_process off;
worker_processes 1;
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path ${dir}/tmp/body;
    proxy_temp_path ${dir}/tmp/proxy;
    fastcgi_temp_path ${dir}/tmp/fastcgi;
    uwsgi_temp_path ${dir}/tmp/uwsgi;
    scgi_temp_path ${dir}/tmp/scgi;
    lua_package_path "${join(import.meta.dir, "chat")}/?.lua;;";
    server {
        listen 127.0.0.1:${port};
        location / { content_by_lua_block { require("nginx").serve() } }
    }
}
`);
  const proc = spawn(["nginx", "-p", dir, "-c", join(dir, "nginx.conf")], { stdout: "ignore", stderr: "inherit" });
  await waitForPort(port, 15_000);
  return { proc, url: `ws://127.0.0.1:${port}/` };
}

const servers: { name: string; proc: Subprocess; url: string }[] = [];
try {
  const raw = await startRawBun("chat/raw-bun.ts");
  servers.push({ name: "raw_bun", proc: raw.proc, url: raw.url });
  const connmix = await startConnmix(script, "", "127.0.0.1", cpus);
  servers.push({ name: "connmix", proc: connmix.proc, url: connmix.url });
  if (baseline) {
    const before = await startConnmix(script, "", "127.0.0.1", cpus, baseline);
    servers.push({ name: "baseline", proc: before.proc, url: before.url });
  }
  if (!process.argv.includes("--no-nginx")) servers.push({ name: "nginx_luajit", ...(await startNginx()) });
  const replies = servers.map(() => [] as number[]);
  const deliveries = servers.map(() => [] as number[]);
  // Replies per CPU-second the server used over the whole wsload run (connecting and warm-up included).
  const perCpu = servers.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    for (const [i, s] of servers.entries()) {
      const cpu0 = cpuSeconds(s.proc.pid);
      const r = await wsload(["echo", s.url, ...load], pin);
      replies[i]!.push(r.msgs_per_s as number);
      perCpu[i]!.push(Math.round(((r.msgs_per_s as number) * seconds) / (cpuSeconds(s.proc.pid) - cpu0)));
      deliveries[i]!.push(r.deliveries_per_s as number);
    }
    console.error(`round ${round + 1}: ` + servers.map((s, i) => `${s.name} ${replies[i]!.at(-1)} replies/s + ${deliveries[i]!.at(-1)} deliveries/s (${perCpu[i]!.at(-1)} per CPU-s)`).join(", "));
  }
  const raw0 = median(replies[0]!);
  const result: Record<string, unknown> = { bench: "chat", conns: 100, window: 16, room_size: 10, connmix_cpus: cpus, load_pinned_to: pin ?? null, load_wait: wait };
  for (const [i, s] of servers.entries()) {
    result[`${s.name}_replies_per_s`] = median(replies[i]!);
    result[`${s.name}_deliveries_per_s`] = median(deliveries[i]!);
    result[`${s.name}_replies_per_cpu_s`] = median(perCpu[i]!);
    if (i > 0) result[`${s.name}_ratio`] = Number((median(replies[i]!) / raw0).toFixed(3));
    if (i > 0) result[`${s.name}_cpu_ratio`] = Number((median(perCpu[i]!) / median(perCpu[0]!)).toFixed(3));
  }
  console.log(JSON.stringify(result));
} finally {
  stop(...servers.map((s) => s.proc));
}
