// loadConfig on real files: defaults, and one exact line for each kind of bad value.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, defaultConfig, loadConfig, type LoadOptions } from "../src/config/index.ts";
import { cleanupAll, tempDir } from "./helpers/files.ts";
import { captureLog } from "./helpers/log.ts";
import { testCa } from "./helpers/tls.ts";

const dir = tempDir("config");
const entry = join(dir, "entry.lua");
writeFileSync(entry, "");
afterAll(cleanupAll);

let n = 0;
function file(yaml: string): string {
  const path = join(dir, `c${n++}.yaml`);
  writeFileSync(path, yaml);
  return path;
}

// A valid engine section whose one server can be varied.
const withServer = (server: string, extra = "") =>
  `engine:\n  servers:\n    - { port: 6790, entry: ${entry}${server ? `, ${server}` : ""} }\n${extra}`;

function errorOf(yaml: string, opts?: LoadOptions): string {
  const path = file(yaml);
  try {
    loadConfig(path, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const msg = (e as Error).message;
    expect(msg).not.toContain("\n");
    expect(msg.startsWith(`${path}: `)).toBe(true);
    return msg.slice(path.length + 2);
  }
  throw new Error(`expected ${path} to be refused`);
}

describe("bad values are refused with file, key path and reason", () => {
  const cases: [string, string, string][] = [
    ["protocol", withServer("protocol: ws"), 'engine.servers[0].protocol must be "websocket" or "socket", got "ws"'],
    ["port too big", withServer("").replace("6790", "70000"), "engine.servers[0].port must be an integer between 1 and 65535, got 70000"],
    ["port zero", "center:\n  registry: { port: 0 }\n" + withServer(""), "center.registry.port must be an integer between 1 and 65535, got 0"],
    ["port as text", "center:\n  apiServer: { port: '6787' }\n" + withServer(""), 'center.apiServer.port must be an integer between 1 and 65535, got "6787"'],
    ["log level", "logging: { level: verbose }\n" + withServer(""), 'logging.level must be "debug", "info", "warn" or "error", got "verbose"'],
    ["negative timeout", withServer("readTimeout: -1"), "engine.servers[0].readTimeout must be a non-negative number, got -1"],
    ["fractional count", "logging: { maxFiles: 1.5 }\n" + withServer(""), "logging.maxFiles must be a non-negative integer, got 1.5"],
    ["zero buffer", withServer("readBufferSize: 0"), "engine.servers[0].readBufferSize must be an integer of at least 1, got 0"],
    ["negative api timeout", "engine:\n  apiServer: { writeTimeout: -5 }\n  servers: []\n", "engine.apiServer.writeTimeout must be a non-negative number, got -5"],
    ["memory limit", "engine:\n  luavm: { memoryLimit: -1 }\n  servers: []\n", "engine.luavm.memoryLimit must be an integer between 0 and 1048576, got -1"],
    ["drop timeout below two heartbeats", "center:\n  registry: { heartbeat: 1000, dropTimeout: 1500 }\n" + withServer(""), "center.registry.dropTimeout must be at least twice center.registry.heartbeat (1000), got 1500"],
    ["heartbeat too small", "center:\n  registry: { heartbeat: 1 }\n" + withServer(""), "center.registry.heartbeat must be an integer of at least 10, got 1"],
    ["negative restart delay", "engine:\n  workers: { restartDelay: -1 }\n  servers: []\n", "engine.workers.restartDelay must be a non-negative integer, got -1"],
    ["queue backend", "engine:\n  luavm: { queue: { backend: cache } }\n  servers: []\n", "engine.luavm.queue.backend must be \"memory\" or \"default\" (a pool of engine.luavm.redis), got \"cache\""],
    [
      "role",
      "access:\n  users:\n    - { username: a, password: b, roles: [read, admin] }\n" + withServer(""),
      'access.users[0].roles[1] must be "read" or "write", got "admin"',
    ],
    ["user without name", "access:\n  users:\n    - { password: b }\n" + withServer(""), "access.users[0].username is required"],
    // Issue 14: an empty password was accepted, and let anyone in as that user.
    ["empty password", "access:\n  users:\n    - { username: a, password: '', roles: [read] }\n" + withServer(""), "access.users[0].password is required"],
    ["no password", "access:\n  users:\n    - { username: a, password: b }\n    - { username: c, roles: [read] }\n" + withServer(""), "access.users[1].password is required"],
    ["colon in a user name", "access:\n  users:\n    - { username: 'a:b', password: c }\n" + withServer(""), 'access.users[0].username must not contain ":" (HTTP Basic credentials split there), got "a:b"'],
    [
      "tls without a key",
      `engine:\n  apiServer: { tls: { cert: ${entry} } }\n  servers: []\n`,
      "engine.apiServer.tls.key is required",
    ],
    [
      "tls file missing",
      withServer(`tls: { cert: ${join(dir, "none.crt")}, key: ${entry} }`),
      `engine.servers[0].tls.cert file not found: ${join(dir, "none.crt")}`,
    ],
    ["tls file not PEM", withServer(`tls: { cert: ${entry}, key: ${entry} }`), `engine.servers[0].tls ${entry} is not a PEM file`],
    [
      "origin with a path",
      "access:\n  origins: [https://app.example.com/]\n" + withServer(""),
      'access.origins[0] must be an origin such as "https://app.example.com" (scheme://host[:port], * matches any run of characters), got "https://app.example.com/"',
    ],
    [
      "duplicate server port",
      `engine:\n  servers:\n    - { port: 6790, entry: ${entry} }\n    - { port: 6790, entry: ${entry}, protocol: socket }\n`,
      "engine.servers[1].port 6790 is already used by engine.servers[0].port",
    ],
    ["server on the api port", withServer("").replace("6790", "6789"), "engine.servers[0].port 6789 is already used by engine.apiServer.port"],
    ["servers not a list", `engine:\n  servers: { port: 1 }\n`, "engine.servers must be a list, got a mapping"],
    ["section not a mapping", "logging: loud\n", 'logging must be a mapping, got "loud"'],
    ["bind not a string", "engine:\n  meshPoint: { bind: [a] }\n  servers: []\n", "engine.meshPoint.bind must be a string, got a list"],
    ["center address", "engine:\n  centerRegistry: localhost\n  servers: []\n", 'engine.centerRegistry must be "host:port", got "localhost"'],
    ["server without entry", "engine:\n  servers:\n    - { port: 6790 }\n", "engine.servers[0].entry is required"],
    ["missing entry file", withServer("").replace(entry, join(dir, "nope.lua")), `engine.servers[0].entry file not found: ${join(dir, "nope.lua")}`],
    ["entry is a directory", withServer("").replace(entry, dir), `engine.servers[0].entry is not a file: ${dir}`],
    ["top level a list", "- 1\n", "top level must be a mapping, got a list"],
  ];
  for (const [name, yaml, reason] of cases) {
    test(name, () => expect(errorOf(yaml)).toBe(reason));
  }

  test("YAML syntax errors name the file and the line", () => {
    const reason = errorOf("logging:\n  level: info\n  filename: [a, b\n");
    expect(reason).toMatch(/^line 4, column \d+: invalid YAML: \S/);
    expect(errorOf("a: 1\na: 2\n")).toBe("line 2, column 1: invalid YAML: Map keys must be unique");
  });

  test("a missing file is named with the errno code", () => {
    const path = join(dir, "absent.yaml");
    expect(() => loadConfig(path)).toThrow(`${path}: cannot read config file (ENOENT)`);
  });
});

describe("modes", () => {
  test("a center does not need the engine's entry files", () => {
    const path = file(withServer("").replace(entry, join(dir, "nope.lua")));
    expect(loadConfig(path, { mode: "center" }).engine.servers[0]!.port).toBe(6790);
    expect(() => loadConfig(path, { mode: "engine" })).toThrow("entry file not found");
  });

  test("center and engine ports may coincide only when they run in separate processes", () => {
    const yaml = "center:\n  apiServer: { port: 6789 }\n" + withServer("");
    expect(errorOf(yaml, { mode: "dev" })).toBe("engine.apiServer.port 6789 is already used by center.apiServer.port");
    expect(loadConfig(file(yaml), { mode: "engine" }).center.apiServer.port).toBe(6789);
  });
});

test("tls: a key that is not the certificate's is refused; a good pair loads, paths resolved", async () => {
  const ca = await testCa();
  const [a, b] = [await ca.issue("a"), await ca.issue("b")];
  const yaml = (cert: string, key: string) => `center:\n  apiServer: { tls: { cert: ${cert}, key: ${key}, reloadCheck: 30 } }\n` + withServer("");
  expect(errorOf(yaml(a.cert, b.key))).toBe(`center.apiServer.tls ${b.key} is not the key of the certificate in ${a.cert}`);
  expect(loadConfig(file(yaml(a.cert, a.key))).center.apiServer.tls).toEqual({ ...a, reloadCheck: 30 });
  // An engine does not read the center's files, nor a center the engine's.
  expect(loadConfig(file(yaml(a.cert, b.key)), { mode: "engine" }).center.apiServer.tls?.key).toBe(b.key);
});

describe("defaults", () => {
  test("a minimal file gets every default of spec §3", () => {
    const cfg = loadConfig(file(`engine:\n  servers:\n    - { port: 7000, entry: ${entry} }\n`));
    const d = defaultConfig();
    expect(cfg.logging).toEqual(d.logging);
    expect(cfg.prometheus).toEqual(d.prometheus);
    expect(cfg.access).toEqual({ users: [], origins: [] });
    expect(cfg.center).toEqual(d.center);
    expect(cfg.engine.apiServer).toEqual(d.engine.apiServer);
    expect(cfg.engine.luavm.redis).toEqual(d.engine.luavm.redis);
    expect(cfg.engine.servers).toEqual([
      {
        port: 7000,
        bind: "0.0.0.0",
        protocol: "websocket",
        options: [],
        entry,
        byteCodeExpires: 10,
        readBufferSize: 1024,
        writeBufferSize: 1024,
        readTimeout: 60,
        writeTimeout: 10,
        convention: "auto",
        tls: null,
      },
    ]);
    expect(cfg.logging.level).toBe("debug");
    expect(cfg.engine.centerRegistry).toBe("localhost:6786");
  });

  test("licenses are accepted and ignored; numbers in text fields become text", () => {
    const yaml =
      "licenses:\n  activationCode: JJGkbZ4t\n  server: https://licenses.example\n" +
      "access:\n  users:\n    - { username: backend, password: 123456, roles: [read, write] }\n" +
      "engine:\n  luavm:\n    redis:\n      - { name: cache, addr: 10.0.0.5:6379, password: }\n" +
      `  servers:\n    - { port: 6790, entry: ${entry}, options: [{ name: path, value: /chat }] }\n`;
    const cfg = loadConfig(file(yaml));
    expect("licenses" in cfg).toBe(false);
    expect(cfg.access.users).toEqual([{ username: "backend", password: "123456", roles: ["read", "write"], host: "*" }]);
    expect(cfg.engine.luavm.redis[0]).toEqual({ ...defaultConfig().engine.luavm.redis[0]!, name: "cache", addr: "10.0.0.5:6379" });
    expect(cfg.engine.servers[0]!.options).toEqual([{ name: "path", value: "/chat" }]);
  });

  test("keys match in any case and protocol custom is socket, as in connmix's early docs (modify-configuration)", () => {
    const logText = captureLog();
    const yaml = `engine:\n  servers:\n    - { port: 6790, entry: ${entry}, protocol: custom, bytecodeExpires: 0, READTIMEOUT: 5 }\n`;
    const server = loadConfig(file(yaml)).engine.servers[0]!;
    expect([server.protocol, server.byteCodeExpires, server.readTimeout]).toEqual(["socket", 0, 5]);
    expect(logText()).not.toContain("not a known setting");
    expect(errorOf(withServer("readTimeout: 5, readtimeout: 6"))).toBe("engine.servers[0].readtimeout repeats engine.servers[0].readTimeout");
  });

  test("access.origins: origins as browsers send them, with globs", () => {
    const yaml = 'access:\n  origins: ["https://app.example.com", "https://*.example.com:8443", "null", "*"]\n' + withServer("");
    expect(loadConfig(file(yaml)).access.origins).toEqual(["https://app.example.com", "https://*.example.com:8443", "null", "*"]);
  });

  test("an empty file is all defaults, with the entry resolved against the working directory", () => {
    const work = mkdtempSync(join(dir, "cwd-"));
    mkdirSync(join(work, "lua"));
    writeFileSync(join(work, "lua/entry.websocket.lua"), "");
    writeFileSync(join(work, "connmix.yaml"), "");
    const before = process.cwd();
    process.chdir(work);
    try {
      const cfg = loadConfig("connmix.yaml");
      expect(cfg.engine.servers).toHaveLength(1);
      expect(cfg.engine.servers[0]!.entry).toBe(join(process.cwd(), "lua/entry.websocket.lua"));
      expect(cfg.engine.servers[0]!.options).toEqual([{ name: "path", value: "/chat" }]);
      expect(() => loadConfig("missing.yaml")).toThrow("missing.yaml: cannot read config file (ENOENT)");
    } finally {
      process.chdir(before);
    }
  });

  test("the shipped conf/connmix.yaml holds exactly the defaults", () => {
    const root = join(import.meta.dir, "..");
    const cfg = loadConfig(join(root, "conf/connmix.yaml"), { mode: "center" });
    const d = defaultConfig();
    d.engine.servers[0]!.entry = join(process.cwd(), d.engine.servers[0]!.entry);
    expect(cfg).toEqual(d);
  });
});
