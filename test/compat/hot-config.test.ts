// Config edits (src/config/hot.ts): every key of the file is, when edited, either applied live, logged as
// having no effect, or logged as needing a restart, each line naming the key and the file. Every declared
// hot key is followed by the real part that applies it. The Lua servers' readTimeout/writeTimeout and the
// API's readTimeout apply to connections opened after the edit.
import { afterEach, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { HotConfig, defaultConfig, parseConfig, watchConfig, type Config, type TlsConfig } from "../../src/config/index.ts";
import { HOT_KEYS, type HotKey } from "../../src/config/hot.ts";
import { clusterSecurity } from "../../src/net/security.ts";
import { TcpConnection } from "../../src/engine/connection.ts";
import { startLuaServers } from "../../src/engine/servers.ts";
import { startApiServer } from "../../src/api/server.ts";
import { freePort } from "../helpers/ports.ts";
import { startTestEngine } from "../api/helpers.ts";
import { flood, SWEEP_MS, TcpClient } from "../engine/helpers.ts";
import { startEngine } from "../helpers/engine.ts";
import { cleanupAll, tempDir } from "../helpers/files.ts";
import { captureLog } from "../helpers/log.ts";
import { testCa } from "../helpers/tls.ts";
import { until } from "../helpers/wait.ts";

afterEach(cleanupAll);

/** Every leaf of a config object, as the paths the reload names (engine.servers[0].port). */
function leaves(v: unknown, path = "", out: string[] = []): string[] {
  if (v === null) return out; // a section that is not set (cluster.tls): nothing to edit
  if (typeof v === "object") {
    for (const [k, x] of Object.entries(v)) leaves(x, Array.isArray(v) ? `${path}[${k}]` : path ? `${path}.${k}` : k, out);
  } else {
    out.push(path);
  }
  return out;
}

/** A valid value different from `v` for the leaf at `path`. */
function edited(path: string, v: unknown, otherEntry: string, otherSecretFile: string, tls: TlsConfig): unknown {
  const name = path.replace(/\[\d+\]/g, "[]");
  const special: Record<string, unknown> = {
    "logging.level": "info",
    "engine.servers[].protocol": "socket",
    "engine.servers[].convention": "1.0.1",
    "engine.servers[].entry": otherEntry,
    "engine.centerRegistry": "localhost:6886",
    "engine.luavm.redis[].addr": "localhost:6380",
    "engine.luavm.queue.backend": "defaultx", // the edited name of the engine.luavm.redis pool
    "access.users[].roles[]": "write",
    "cluster.secretFile": otherSecretFile,
    "center.apiServer.tls": tls,
    "engine.apiServer.tls": tls,
    "engine.servers[].tls": tls,
  };
  if (name in special) return special[name];
  if (typeof v === "number") return /port$/i.test(path) ? v + 100 : v + 1;
  if (typeof v === "string") return /bind$/.test(path) ? (v === "127.0.0.1" ? "127.0.0.2" : "127.0.0.1") : v + "x";
  throw new Error(`no edit for ${path} (${typeof v}): teach this test`);
}

const steps = (path: string) => path.replace(/\[(\d+)\]/g, ".$1").split(".");
const getPath = (obj: any, path: string): unknown => steps(path).reduce((o, p) => o[p], obj);
function setPath(obj: any, path: string, value: unknown): void {
  const parts = steps(path);
  const last = parts.pop()!;
  for (const p of parts) obj = obj[p];
  obj[last] = value;
}

describe("config edits", () => {
  test("every key is applied live, has no effect, or is logged as needing a restart (naming key and file)", async () => {
    const dir = tempDir("hot");
    const entry = join(dir, "a.lua");
    const otherEntry = join(dir, "b.lua");
    writeFileSync(entry, "");
    writeFileSync(otherEntry, "");
    const base: Config = defaultConfig();
    base.engine.servers[0]!.entry = entry;
    base.engine.servers[0]!.bind = "127.0.0.1";
    base.engine.servers[0]!.port = freePort();
    base.engine.apiServer.bind = "127.0.0.1";
    base.engine.apiServer.port = freePort();
    base.access.users = [{ username: "u", password: "p", roles: ["read"], host: "*" }];
    // The secret from a file (its line becomes cluster.secret[0]); the edit points to another file.
    base.cluster.secretFile = join(dir, "secret-a");
    const otherSecretFile = join(dir, "secret-b");
    writeFileSync(base.cluster.secretFile, "first-test-secret-0123456789\n");
    writeFileSync(otherSecretFile, "second-test-secret-0123456789\n");
    const changed = structuredClone(base);
    const keys = [...leaves(base), "cluster.secret[0]"];
    const ca = await testCa();
    const tls = { ...(await ca.issue("hot")), reloadCheck: 10 };
    for (const k of leaves(base)) setPath(changed, k, edited(k, getPath(base, k), otherEntry, otherSecretFile, tls));
    // A queue backend other than memory names a Redis pool: the edited one.
    if ("backend" in base.engine.luavm.queue) setPath(changed, "engine.luavm.queue.backend", changed.engine.luavm.redis[0]!.name);
    const file = join(dir, "connmix.yaml");
    writeFileSync(file, stringify(base));
    const logText = captureLog();
    // The parts of an engine that apply hot keys, following this process's HotConfig as src/app wires them.
    const running = parseConfig(stringify(base), file);
    const hot = new HotConfig();
    const security = clusterSecurity(running, hot);
    const engine = await startLuaServers(running, 1, 0, { hot });
    const api = await startApiServer(running, engine.node, { hot });
    expect((Object.keys(HOT_KEYS) as HotKey[]).filter((k) => !hot.follows(k))).toEqual([]);
    const watcher = watchConfig(file, running, hot, { pollMs: 50, debounceMs: 20 });
    try {
      writeFileSync(file, stringify(changed));
      await until(() => logText().includes(`config ${file} reloaded`) || logText().includes("\tERROR\t"), 10_000, "the reload");
    } finally {
      watcher.close();
      await api.stop();
      await engine.stop();
      security.stop();
    }
    const text = logText();
    expect(text).not.toContain("\tERROR\t");
    const live: string[] = [];
    for (const key of keys) {
      const esc = `config ${file}: ${key} `.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      const line = new RegExp(`\\t(INFO|WARN)\\t[^\\t]+\\t${esc}(applied .*|has no effect .*|changed but needs a restart to apply; the running value stays)$`, "m").exec(text);
      expect(line === null ? `no line for ${key}` : "found").toBe("found");
      expect(line![1]).toBe(line![2]!.startsWith("changed") ? "WARN" : "INFO");
      if (line![2]!.startsWith("applied")) live.push(key.replace(/\[\d+\]/g, "[]"));
    }
    // Every declared hot key was seen applied (access.* as its leaves).
    for (const k of Object.keys(HOT_KEYS)) {
      const re = new RegExp("^" + k.replace(/[.[\]]/g, "\\$&").replace(/\\\.\*$/, "\\..+") + "$");
      expect(live.some((l) => re.test(l)) ? k : `${k} never applied`).toBe(k);
    }
  });

  test("a hot key that nothing in the process follows is logged as having no effect here", async () => {
    const dir = tempDir("hot-none");
    const file = join(dir, "connmix.yaml");
    const base = defaultConfig();
    writeFileSync(file, stringify(base));
    const logText = captureLog();
    const watcher = watchConfig(file, parseConfig(stringify(base), file), new HotConfig(), { pollMs: 50, debounceMs: 20 });
    try {
      const changed = structuredClone(base);
      changed.engine.apiServer.readTimeout += 1;
      writeFileSync(file, stringify(changed));
      await until(() => logText().includes(`config ${file}: engine.apiServer.readTimeout `), 10_000, "the reload");
    } finally {
      watcher.close();
    }
    expect(logText()).toContain(`config ${file}: engine.apiServer.readTimeout has no effect (nothing in this process applies it)`);
  });

  test("a Lua server's readTimeout edit applies to connections opened after it; open ones keep theirs", async () => {
    const s = await startEngine("function on_message(msg, conn) end", { server: { protocol: "socket", readTimeout: 30 }, sweepMs: SWEEP_MS });
    const before = await TcpClient.connect(s.port);
    await until(() => s.engine.node.connections.size === 1);
    const next = structuredClone(s.config);
    next.engine.servers[0]!.readTimeout = 0.5;
    s.hot.apply(next, s.config);
    const after = await TcpClient.connect(s.port);
    const t0 = Date.now();
    await after.waitClosed(4000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    expect(before.closed).toBe(false);
  });

  test("a Lua server's writeTimeout edit applies to connections opened after it", async () => {
    const logText = captureLog();
    const s = await startEngine("function protocol_input(b) return b:length() end\nfunction on_message(msg, conn) end", { server: { protocol: "socket", writeTimeout: 30 }, sweepMs: SWEEP_MS });
    const next = structuredClone(s.config);
    next.engine.servers[0]!.writeTimeout = 0.5;
    s.hot.apply(next, s.config);
    const c = await TcpClient.connect(s.port, { read: false });
    await until(() => s.engine.node.connections.size === 1);
    const id = [...s.engine.node.connections.keys()][0]!;
    const conn = s.engine.node.connections.get(id) as TcpConnection;
    expect(conn).toBeInstanceOf(TcpConnection);
    expect(conn.writeTimeout).toBe(0.5);
    const r = await flood(s, conn, () => conn.pendingBytes, 50);
    expect(r.open).toBe(false);
    expect(logText()).toContain(`client ${id} did not read for 0.5s, dropped`);
    c.end();
  }, 15_000);

  test("the API's readTimeout edit applies to /ws/v1 connections opened after it", async () => {
    const e = await startTestEngine("function on_message(msg, conn) end");
    try {
      const next = structuredClone(e.config);
      next.engine.apiServer.readTimeout = 8; // Bun's WebSocket idle timeout has a floor of 8 s
      e.hot.apply(next, e.config);
      // A raw client that never answers Bun's pings: dropped once idle for readTimeout (it was 60 s).
      let closed = false;
      const raw = await new Promise<import("bun").Socket>((resolve) => {
        void Bun.connect({
          hostname: "127.0.0.1", port: e.api.port,
          socket: {
            open: (s) => { s.write(`GET /ws/v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`); resolve(s); },
            data() {},
            close: () => { closed = true; },
          },
        });
      });
      const t0 = Date.now();
      // Bun's idle timer ticks in 4 s steps: closed after 4 to 8 s, where the old 60 s would keep it.
      await until(() => closed, 20_000, "the idle /ws/v1 connection closed");
      expect(Date.now() - t0).toBeGreaterThanOrEqual(3000);
      raw.end();
    } finally {
      await e.stop();
    }
  }, 30_000);

  test("the API's readTimeout edit applies to HTTP requests after it: a body that stops arriving is cut", async () => {
    const e = await startTestEngine("function on_message(msg, conn) end");
    try {
      const next = structuredClone(e.config);
      next.engine.apiServer.readTimeout = 2;
      e.hot.apply(next, e.config);
      const c = await TcpClient.connect(e.api.port);
      c.write("POST /v1/mesh/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"c\":");
      const t0 = Date.now();
      // Bun's idle timer ticks in 4 s steps: closed after 2 to 8 s, where the old 60 s would keep it.
      await c.waitClosed(20_000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    } finally {
      await e.stop();
    }
  }, 30_000);
});
