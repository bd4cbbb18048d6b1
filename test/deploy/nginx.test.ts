// The documented nginx setup, for real: nginx (a child process with its own prefix, config, pid and logs
// in a temp dir, on free loopback ports) runs the files of deploy/nginx/ with only the addresses, ports
// and certificate paths substituted, in front of two engine processes and a center started with
// bin/connmix on conf/connmix.yaml (ports rewritten). Clients connect through nginx over ws and wss
// (a self-signed certificate made here), land on different engines, and get publishes and sends that
// cross engines. A server block written like the seed's (no HTTP/1.1, no Upgrade headers) shows why the
// documented headers are needed, and a silent client is closed by the engine's readTimeout, not nginx.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { nodeOf } from "../../src/net/client-ids.ts";
import { cleanupAll, tempDir } from "../helpers/files.ts";
import { post } from "../helpers/http.ts";
import { freePorts, waitForPort } from "../helpers/ports.ts";
import { Proc, ROOT } from "../helpers/process.ts";
import { Client } from "../helpers/ws.ts";
import { localConfig, localPorts, type LocalPorts } from "./local-config.ts";

const NGINX_DIR = join(ROOT, "deploy/nginx");
const READ_TIMEOUT = 3; // seconds, engine.servers[0].readTimeout for this test

/** `text` with `from` replaced by `to`; `from` must occur exactly once, so a doc edit cannot slip by. */
function substitute(text: string, from: string, to: string): string {
  const found = text.split(from).length - 1;
  if (found !== 1) throw new Error(`expected ${JSON.stringify(from)} once in the deploy/nginx config, found it ${found} times`);
  return text.replace(from, to);
}

interface NginxPorts {
  ws: number;
  wss: number;
  /** A location written like the seed's snippet: proxy_pass alone. */
  bare: number;
}

/** Writes the deploy/nginx files, adapted, and a main nginx.conf around them into `dir`; returns its path. */
function nginxConfig(dir: string, ports: NginxPorts, engines: number[], cert: string, key: string): string {
  const read = (f: string) => readFileSync(join(NGINX_DIR, f), "utf8");
  const snippet = join(dir, "connmix-proxy.conf");
  writeFileSync(snippet, read("connmix-proxy.conf"));

  let ws = read("connmix.conf");
  // The upstream lists one `server <address> ...;` line per engine: put ours in, in order.
  const upstream = /upstream connmix_engines \{[^}]*\}/.exec(ws)![0];
  const serverLine = /^(\s*server\s+)\S+/gm;
  if (upstream.match(serverLine)?.length !== engines.length) throw new Error(`expected ${engines.length} servers in ${upstream}`);
  let i = 0;
  ws = ws.replace(upstream, upstream.replace(serverLine, (_, head: string) => `${head}127.0.0.1:${engines[i++]}`));
  ws = substitute(ws, "listen 80;", `listen 127.0.0.1:${ports.ws};`);
  ws = substitute(ws, "/etc/nginx/snippets/connmix-proxy.conf", snippet);
  writeFileSync(join(dir, "connmix.conf"), ws);

  let wss = read("connmix-ssl.conf");
  wss = substitute(wss, "listen 443 ssl;", `listen 127.0.0.1:${ports.wss} ssl;`);
  wss = substitute(wss, "/opt/nginx/ssl/demo.crt", cert);
  wss = substitute(wss, "/opt/nginx/ssl/demo.key", key);
  wss = substitute(wss, "/etc/nginx/snippets/connmix-proxy.conf", snippet);
  writeFileSync(join(dir, "connmix-ssl.conf"), wss);

  const tmp = join(dir, "tmp");
  mkdirSync(tmp);
  const main = join(dir, "nginx.conf");
  writeFileSync(main, `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
    access_log ${dir}/access.log;
    client_body_temp_path ${tmp}/body;
    proxy_temp_path ${tmp}/proxy;
    fastcgi_temp_path ${tmp}/fastcgi;
    uwsgi_temp_path ${tmp}/uwsgi;
    scgi_temp_path ${tmp}/scgi;
    include ${dir}/connmix.conf;
    include ${dir}/connmix-ssl.conf;
    server {
        listen 127.0.0.1:${ports.bare};
        location /chat { proxy_pass http://connmix_engines; }
    }
}
`);
  return main;
}

const dir = tempDir("nginx");
let engines: LocalPorts[] = [];
let proxy: NginxPorts;
const nodes: Proc[] = [];
let nginx: Proc;

/** A client through nginx that pings every 500 ms (WebSocket pings: the engine counts them as reads). */
async function pinging(url: string, options?: object): Promise<Client> {
  const c = await Client.open(url, options);
  const timer = setInterval(() => c.closed || c.ws.ping(), 500);
  c.ws.addEventListener("close", () => clearInterval(timer));
  return c;
}

async function joinRoom(c: Client): Promise<void> {
  c.send({ op: "join", room_id: 7 });
  expect(await c.json()).toEqual({ status: "success" });
}

/** `from` says `text` in room 7; returns its client id as `to` sees it in the published message. */
async function say(from: Client, to: Client, text: string): Promise<number> {
  from.send({ op: "send", msg: text });
  const m = await to.until((x) => x.msg === text);
  expect(Object.keys(m).sort()).toEqual(["client_id", "msg"]);
  return m.client_id;
}

beforeAll(async () => {
  const conf = readFileSync(join(ROOT, "conf/connmix.yaml"), "utf8");
  const timeout: [string[], unknown][] = [[["engine", "servers", "0", "readTimeout"], READ_TIMEOUT]];
  const center = localPorts();
  engines = [localPorts(), localPorts()].map((p) => ({ ...p, registry: center.registry }));
  const write = (name: string, ports: LocalPorts) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, localConfig(conf, ports, join(dir, `${name}.log`), timeout));
    return file;
  };
  nodes.push(new Proc("center", [join(ROOT, "bin/connmix"), "center", "-f", write("center", center), "-p", "1"]));
  await nodes[0]!.waitFor("start the registry server");
  engines.forEach((p, i) => nodes.push(new Proc(`engine${i + 1}`, [join(ROOT, "bin/connmix"), "engine", "-f", write(`engine${i + 1}`, p), "-p", "1"])));
  await Promise.all(nodes.slice(1).map((n) => n.waitFor("start the lua server")));

  const [ws, wss, bare] = freePorts(3);
  proxy = { ws: ws!, wss: wss!, bare: bare! };
  const cert = join(dir, "demo.crt");
  const key = join(dir, "demo.key");
  const ssl = Bun.spawnSync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"], { timeout: 10_000 });
  if (ssl.exitCode !== 0) throw new Error(`openssl: ${ssl.stderr.toString()}`);
  const main = nginxConfig(dir, proxy, engines.map((p) => p.servers[0]!), cert, key);
  const args = ["-p", dir, "-c", main, "-e", join(dir, "error.log")];
  const check = Bun.spawnSync(["nginx", "-t", ...args], { timeout: 10_000 });
  const checked = check.stderr.toString();
  if (!checked.includes("test is successful")) throw new Error(`nginx -t:\n${checked}`);
  nginx = new Proc("nginx", ["nginx", ...args]);
  await Promise.all([proxy.ws, proxy.wss, proxy.bare].map((p) => waitForPort(p)));
}, 30_000);

afterAll(async () => {
  for (const n of nodes.slice(1)) expect(await n.stop()).toBe(0); // engines leave cleanly through SIGTERM
  await cleanupAll();
});

describe("nginx (deploy/nginx) in front of two engines and a center", () => {
  let a: Client, b: Client, silent: Client;
  let idA = 0, idB = 0, silentSince = 0;

  test("ws: clients land on both engines; Lua and API publishes and API sends cross engines", async () => {
    a = await pinging(`ws://127.0.0.1:${proxy.ws}/chat`);
    b = await pinging(`ws://127.0.0.1:${proxy.ws}/chat`);
    await joinRoom(a);
    await joinRoom(b);
    // Lua's mix.mesh.publish on one engine reaches the room member on the other, both ways.
    idA = await say(a, b, "a here");
    idB = await say(b, a, "b here");
    expect(nodeOf(idA)).not.toBe(nodeOf(idB)); // least_conn: the second connection went to the idle engine
    silent = await Client.open(`ws://127.0.0.1:${proxy.ws}/chat`); // never pings: see the last test
    silentSince = Date.now();

    // An HTTP publish on either engine's API reaches the room on both engines.
    for (const e of engines) {
      const text = `to everyone via ${e.api}`;
      expect(await post(`http://127.0.0.1:${e.api}/v1/mesh/publish`, { c: "room:7", d: text })).toEqual({ E: null, r: { s: 2, f: 0 } });
      expect(await a.until((m) => m === text)).toBe(text);
      expect(await b.until((m) => m === text)).toBe(text);
    }

    // An HTTP send on either engine's API reaches a client on either engine (one of the two is remote).
    for (const e of engines) {
      for (const [c, id] of [[a, idA], [b, idB]] as const) {
        const text = `direct via ${e.api}`;
        expect(await post(`http://127.0.0.1:${e.api}/v1/mesh/send`, { c: String(id), d: text })).toEqual({ E: null, r: { s: true } });
        expect(await c.until((m) => m === text)).toBe(text);
      }
    }
  }, 20_000);

  test("wss: TLS ends at nginx (self-signed certificate), the engines keep plain ws", async () => {
    const c = await pinging(`wss://127.0.0.1:${proxy.wss}/chat`, { tls: { rejectUnauthorized: false } });
    await joinRoom(c);
    const id = await say(c, a, "secure hello");
    expect(await say(b, c, "hello wss")).toBe(idB);
    expect([idA, idB]).not.toContain(id);
    const pub = await post(`http://127.0.0.1:${engines[1]!.api}/v1/mesh/publish`, { c: "room:7", d: "to wss too" });
    expect(pub).toEqual({ E: null, r: { s: 3, f: 0 } }); // a, b and this one
    expect(await c.until((m) => m === "to wss too")).toBe("to wss too");
    // A client that checks certificates refuses the self-signed one: this really is nginx's TLS.
    await expect(Client.open(`wss://127.0.0.1:${proxy.wss}/chat`)).rejects.toThrow();
  }, 10_000);

  test("the seed's snippet (proxy_pass alone, no Upgrade headers) cannot carry WebSocket", async () => {
    await expect(Client.open(`ws://127.0.0.1:${proxy.bare}/chat`)).rejects.toThrow();
  });

  test("a silent client is closed by the engine's readTimeout (1001) through nginx; pinging clients stay", async () => {
    const closed = await silent.waitClosed((READ_TIMEOUT + 6) * 1000);
    expect(closed).toEqual({ code: 1001, reason: "read timeout" });
    expect(Date.now() - silentSince).toBeGreaterThanOrEqual((READ_TIMEOUT - 0.5) * 1000);
    expect(a.closed).toBeNull(); // open for longer than readTimeout, pinging
    expect(b.closed).toBeNull();
    a.send({ op: "send", msg: "still here" });
    expect(await b.until((m) => m.msg === "still here")).toEqual({ client_id: idA, msg: "still here" });
    expect(nginx.exitCode).toBeNull();
  }, 15_000);
});
