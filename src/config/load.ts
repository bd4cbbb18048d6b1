// Reads conf/connmix.yaml, fills defaults and refuses bad values with one line:
// `<file as given>: <key path> <reason>`.
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { parseDocument } from "yaml";
import { log } from "../log/logger.ts";
import { readCluster } from "./cluster.ts";
import {
  defaultConfig,
  defaultRedis,
  defaultServer,
  LOG_LEVELS,
  PROTOCOLS,
  CONVENTIONS,
  ROLES,
  type AccessUser,
  type ApiServerConfig,
  type Config,
  type Mode,
  type ListenConfig,
  type RedisConfig,
  type ServerConfig,
  type TlsConfig,
  TLS_RELOAD_CHECK,
} from "./schema.ts";
import { readPem } from "../net/cert-files.ts";

export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface LoadOptions {
  // Services this process runs; decides whether entry files and cross-service ports are checked.
  // Omitted: validate as if everything runs here.
  mode?: Mode;
}

type Obj = Record<string, unknown>;

export function loadConfig(path: string, opts: LoadOptions = {}): Config {
  return parseConfig(readConfigText(path), path, opts);
}

export function readConfigText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`${path}: cannot read config file (${code ?? (e as Error).message})`);
  }
}

export function parseConfig(text: string, file: string, opts: LoadOptions = {}): Config {
  const doc = parseDocument(text);
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const where = pos ? `line ${pos.line}, column ${pos.col}: ` : "";
    const reason = err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
    throw new ConfigError(`${file}: ${where}invalid YAML: ${reason}`);
  }
  return new Reader(file, opts.mode).config(doc.toJS());
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return "a list";
  if (v !== null && typeof v === "object") return "a mapping";
  return String(v);
}

function quoteList(items: readonly string[]): string {
  const q = items.map((s) => JSON.stringify(s));
  return q.length === 1 ? q[0]! : `${q.slice(0, -1).join(", ")} or ${q[q.length - 1]}`;
}

const at = (path: string, key: string | number) =>
  typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key;

export class Reader {
  constructor(
    private file: string,
    private mode: Mode | undefined,
  ) {}

  fail(path: string, reason: string): never {
    throw new ConfigError(`${this.file}: ${path} ${reason}`);
  }

  // A mapping at `path` (absent → empty); unknown keys are warned about, not fatal, so files written for
  // other versions still load. Keys match in any case, as connmix's (`bytecodeExpires` in some of its docs).
  map(v: unknown, path: string, known: string[]): Obj {
    if (v === null || v === undefined) return {};
    if (typeof v !== "object" || Array.isArray(v)) this.fail(path || "top level", `must be a mapping, got ${show(v)}`);
    const m: Obj = {};
    for (const [key, value] of Object.entries(v)) {
      const name = known.includes(key) ? key : known.find((k) => k.toLowerCase() === key.toLowerCase());
      if (name === undefined) log.warn(`${this.file}: ${at(path, key)} is not a known setting, ignored`);
      else if (name in m) this.fail(at(path, key), `repeats ${at(path, name)}`);
      else m[name] = value;
    }
    return m;
  }

  list(m: Obj, key: string, path: string): unknown[] | undefined {
    const v = m[key];
    if (v === null || v === undefined) return undefined;
    if (!Array.isArray(v)) this.fail(at(path, key), `must be a list, got ${show(v)}`);
    return v;
  }

  int(m: Obj, key: string, path: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = m[key];
    if (v === null || v === undefined) return def;
    if (typeof v === "number" && Number.isInteger(v) && v >= min && v <= max) return v;
    const want =
      max !== Number.MAX_SAFE_INTEGER
        ? `an integer between ${min} and ${max}`
        : min === 0
          ? "a non-negative integer"
          : `an integer of at least ${min}`;
    return this.fail(at(path, key), `must be ${want}, got ${show(v)}`);
  }

  port(m: Obj, key: string, path: string, def: number): number {
    return this.int(m, key, path, def, 1, 65535);
  }

  seconds(m: Obj, key: string, path: string, def: number): number {
    const v = m[key];
    if (v === null || v === undefined) return def;
    if (typeof v === "number" && Number.isFinite(v) && v >= 0) return v;
    return this.fail(at(path, key), `must be a non-negative number, got ${show(v)}`);
  }

  // Numbers and booleans are taken as text (`password: 123456` is common).
  str(m: Obj, key: string, path: string, def: string): string {
    const v = m[key];
    if (v === null || v === undefined) return def;
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    return this.fail(at(path, key), `must be a string, got ${show(v)}`);
  }

  required(m: Obj, key: string, path: string): void {
    if (m[key] === null || m[key] === undefined || m[key] === "") this.fail(at(path, key), "is required");
  }

  choice<T extends string>(m: Obj, key: string, path: string, def: T, allowed: readonly T[]): T {
    const v = m[key];
    if (v === null || v === undefined) return def;
    if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
    return this.fail(at(path, key), `must be ${quoteList(allowed)}, got ${show(v)}`);
  }

  hostPort(m: Obj, key: string, path: string, def: string): string {
    const v = this.str(m, key, path, def);
    const match = /^(.+):(\d+)$/.exec(v);
    const port = match ? Number(match[2]) : 0;
    if (port < 1 || port > 65535) this.fail(at(path, key), `must be "host:port", got ${show(v)}`);
    return v;
  }

  listen(v: unknown, path: string, def: ListenConfig, extra: string[] = []): { m: Obj; listen: ListenConfig } {
    const m = this.map(v, path, ["port", "bind", ...extra]);
    return { m, listen: { port: this.port(m, "port", path, def.port), bind: this.str(m, "bind", path, def.bind) } };
  }

  config(raw: unknown): Config {
    const d = defaultConfig();
    const top = this.map(raw, "", ["logging", "prometheus", "licenses", "access", "cluster", "center", "engine"]);

    const lg = this.map(top.logging, "logging", ["filename", "maxFiles", "level"]);
    const logging = {
      filename: this.str(lg, "filename", "logging", d.logging.filename),
      maxFiles: this.int(lg, "maxFiles", "logging", d.logging.maxFiles),
      level: this.choice(lg, "level", "logging", d.logging.level, LOG_LEVELS),
    };
    if (!logging.filename) this.fail("logging.filename", "is required");

    const pm = this.map(top.prometheus, "prometheus", ["summary"]);
    const sm = this.map(pm.summary, "prometheus.summary", ["maxAge", "ageBuckets", "bufCap"]);
    const ds = d.prometheus.summary;
    const summary = {
      maxAge: this.seconds(sm, "maxAge", "prometheus.summary", ds.maxAge),
      ageBuckets: this.int(sm, "ageBuckets", "prometheus.summary", ds.ageBuckets, 1),
      bufCap: this.int(sm, "bufCap", "prometheus.summary", ds.bufCap, 1),
    };

    const ac = this.map(top.access, "access", ["users", "origins"]);
    const users = (this.list(ac, "users", "access") ?? []).map((u, i) => this.user(u, at("access.users", i)));
    const origins = (this.list(ac, "origins", "access") ?? []).map((o, i) => this.origin(o, at("access.origins", i)));

    const cluster = readCluster(this, top.cluster);

    const ce = this.map(top.center, "center", ["registry", "apiServer"]);
    const reg = this.listen(ce.registry, "center.registry", d.center.registry, ["heartbeat", "dropTimeout", "doubtTimeout"]);
    const dr = d.center.registry;
    const registry = {
      ...reg.listen,
      heartbeat: this.int(reg.m, "heartbeat", "center.registry", dr.heartbeat, 10),
      dropTimeout: this.int(reg.m, "dropTimeout", "center.registry", dr.dropTimeout, 10),
      doubtTimeout: this.int(reg.m, "doubtTimeout", "center.registry", dr.doubtTimeout),
    };
    // A node heartbeating as slowly as it may be dropped would flap in and out of the cluster.
    if (registry.dropTimeout < 2 * registry.heartbeat) {
      this.fail("center.registry.dropTimeout", `must be at least twice center.registry.heartbeat (${registry.heartbeat}), got ${registry.dropTimeout}`);
    }
    const centerApi = this.listen(ce.apiServer, "center.apiServer", d.center.apiServer, ["tls"]);
    const center = {
      registry,
      apiServer: { ...centerApi.listen, tls: this.tls(centerApi.m, "center.apiServer", this.mode !== "engine") },
    };

    const engine = this.engine(top.engine, d.engine);
    this.checkPorts(center, engine);
    return { logging, prometheus: { summary }, access: { users, origins }, cluster, center, engine };
  }

  user(v: unknown, path: string): AccessUser {
    const m = this.map(v, path, ["username", "password", "roles", "host"]);
    this.required(m, "username", path);
    this.required(m, "password", path);
    const username = this.str(m, "username", path, "");
    if (username.includes(":")) this.fail(at(path, "username"), `must not contain ":" (HTTP Basic credentials split there), got ${show(username)}`);
    const roles = (this.list(m, "roles", path) ?? []).map((r, i) => {
      if (typeof r === "string" && (ROLES as readonly string[]).includes(r)) return r as AccessUser["roles"][number];
      return this.fail(at(at(path, "roles"), i), `must be ${quoteList(ROLES)}, got ${show(r)}`);
    });
    return {
      username,
      password: this.str(m, "password", path, ""),
      roles,
      host: this.str(m, "host", path, "*"),
    };
  }

  // An Origin header value as browsers send it (scheme://host[:port], or "null"), `*` matching any run of characters.
  origin(v: unknown, path: string): string {
    if (typeof v === "string" && /^(\*|null|[a-z*][a-z0-9+.*-]*:\/\/[^\s/]+)$/i.test(v)) return v;
    return this.fail(path, `must be an origin such as "https://app.example.com" (scheme://host[:port], * matches any run of characters), got ${show(v)}`);
  }

  engine(v: unknown, d: Config["engine"]): Config["engine"] {
    const en = this.map(v, "engine", ["centerRegistry", "drainTimeout", "meshPoint", "apiServer", "luavm", "workers", "servers"]);
    const bufferKeys = ["readBufferSize", "writeBufferSize", "readTimeout", "writeTimeout", "tls"];
    const api = this.listen(en.apiServer, "engine.apiServer", d.apiServer, bufferKeys);
    const apiServer: ApiServerConfig = {
      ...api.listen,
      readBufferSize: this.int(api.m, "readBufferSize", "engine.apiServer", d.apiServer.readBufferSize, 1),
      writeBufferSize: this.int(api.m, "writeBufferSize", "engine.apiServer", d.apiServer.writeBufferSize, 1),
      readTimeout: this.seconds(api.m, "readTimeout", "engine.apiServer", d.apiServer.readTimeout),
      writeTimeout: this.seconds(api.m, "writeTimeout", "engine.apiServer", d.apiServer.writeTimeout),
      tls: this.tls(api.m, "engine.apiServer", this.mode !== "center"),
    };

    const lv = this.map(en.luavm, "engine.luavm", ["callbackTimeout", "memoryLimit", "queue", "redis"]);
    const callbackTimeout = this.int(lv, "callbackTimeout", "engine.luavm", d.luavm.callbackTimeout, 0);
    const memoryLimit = this.int(lv, "memoryLimit", "engine.luavm", d.luavm.memoryLimit, 0, 1 << 20);
    const qm = this.map(lv.queue, "engine.luavm.queue", ["topicSize", "maxTopics", "backend", "shutdownTimeout", "claimIdle"]);
    const dq = d.luavm.queue;
    const queue = {
      topicSize: this.int(qm, "topicSize", "engine.luavm.queue", dq.topicSize, 1),
      maxTopics: this.int(qm, "maxTopics", "engine.luavm.queue", dq.maxTopics, 1),
      backend: this.str(qm, "backend", "engine.luavm.queue", dq.backend),
      shutdownTimeout: this.seconds(qm, "shutdownTimeout", "engine.luavm.queue", dq.shutdownTimeout),
      claimIdle: this.seconds(qm, "claimIdle", "engine.luavm.queue", dq.claimIdle),
    };
    const redisList = this.list(lv, "redis", "engine.luavm");
    const redis = redisList ? redisList.map((r, i) => this.redis(r, at("engine.luavm.redis", i))) : d.luavm.redis;
    if (queue.backend !== "memory" && !redis.some((r) => r.name === queue.backend)) {
      const names = quoteList(["memory", ...redis.map((r) => r.name)]);
      this.fail("engine.luavm.queue.backend", `must be ${names} (a pool of engine.luavm.redis), got ${show(queue.backend)}`);
    }

    const wm = this.map(en.workers, "engine.workers", ["restartDelay", "rebalanceDelay"]);
    const workers = {
      restartDelay: this.int(wm, "restartDelay", "engine.workers", d.workers.restartDelay),
      rebalanceDelay: this.int(wm, "rebalanceDelay", "engine.workers", d.workers.rebalanceDelay),
    };

    const serverList = this.list(en, "servers", "engine");
    const servers = serverList
      ? serverList.map((s, i) => this.server(s, at("engine.servers", i)))
      : d.servers.map((s, i) => this.server(s, at("engine.servers", i)));

    return {
      centerRegistry: this.hostPort(en, "centerRegistry", "engine", d.centerRegistry),
      drainTimeout: this.seconds(en, "drainTimeout", "engine", d.drainTimeout),
      meshPoint: this.listen(en.meshPoint, "engine.meshPoint", d.meshPoint).listen,
      apiServer,
      luavm: { callbackTimeout, memoryLimit, queue, redis },
      workers,
      servers,
    };
  }

  redis(v: unknown, path: string): RedisConfig {
    const d = defaultRedis();
    const m = this.map(v, path, Object.keys(d));
    return {
      name: this.str(m, "name", path, d.name),
      addr: this.hostPort(m, "addr", path, d.addr),
      password: this.str(m, "password", path, d.password),
      db: this.int(m, "db", path, d.db),
      poolSize: this.int(m, "poolSize", path, d.poolSize, 1),
      minIdleConns: this.int(m, "minIdleConns", path, d.minIdleConns),
      maxConnAge: this.seconds(m, "maxConnAge", path, d.maxConnAge),
      idleTimeout: this.seconds(m, "idleTimeout", path, d.idleTimeout),
      dialTimeout: this.seconds(m, "dialTimeout", path, d.dialTimeout),
      readTimeout: this.seconds(m, "readTimeout", path, d.readTimeout),
      poolTimeout: this.seconds(m, "poolTimeout", path, d.poolTimeout),
    };
  }

  server(v: unknown, path: string): ServerConfig {
    const d = defaultServer();
    const m = this.map(v, path, ["port", "entry", ...Object.keys(d)]);
    this.required(m, "port", path);
    this.required(m, "entry", path);
    const port = this.port(m, "port", path, 0);
    const options = (this.list(m, "options", path) ?? []).map((o, i) => {
      const p = at(at(path, "options"), i);
      const om = this.map(o, p, ["name", "value"]);
      this.required(om, "name", p);
      return { name: this.str(om, "name", p, ""), value: this.str(om, "value", p, "") };
    });
    const entry = resolve(process.cwd(), this.str(m, "entry", path, ""));
    if (this.mode !== "center") this.checkFile(entry, at(path, "entry"));
    return {
      port,
      bind: this.str(m, "bind", path, d.bind),
      // "custom" is what connmix's early docs called the socket protocol.
      protocol: m.protocol === "custom" ? "socket" : this.choice(m, "protocol", path, d.protocol, PROTOCOLS),
      options,
      entry,
      byteCodeExpires: this.seconds(m, "byteCodeExpires", path, d.byteCodeExpires),
      readBufferSize: this.int(m, "readBufferSize", path, d.readBufferSize, 1),
      writeBufferSize: this.int(m, "writeBufferSize", path, d.writeBufferSize, 1),
      readTimeout: this.seconds(m, "readTimeout", path, d.readTimeout),
      writeTimeout: this.seconds(m, "writeTimeout", path, d.writeTimeout),
      convention: this.choice(m, "convention", path, d.convention, CONVENTIONS),
      tls: this.tls(m, path, this.mode !== "center"),
    };
  }

  // `tls: {cert, key, reloadCheck}` of a listener; with `check`, the files must hold a certificate and its key.
  tls(m: Obj, path: string, check: boolean): TlsConfig | null {
    if (m.tls === null || m.tls === undefined) return null;
    const p = at(path, "tls");
    const tm = this.map(m.tls, p, ["cert", "key", "reloadCheck"]);
    this.required(tm, "cert", p);
    this.required(tm, "key", p);
    const tls = {
      cert: resolve(process.cwd(), this.str(tm, "cert", p, "")),
      key: resolve(process.cwd(), this.str(tm, "key", p, "")),
      reloadCheck: this.seconds(tm, "reloadCheck", p, TLS_RELOAD_CHECK),
    };
    if (!check) return tls;
    this.checkFile(tls.cert, at(p, "cert"));
    this.checkFile(tls.key, at(p, "key"));
    try {
      readPem(tls);
    } catch (e) {
      this.fail(p, (e as Error).message);
    }
    return tls;
  }

  checkFile(file: string, path: string): void {
    let isFile = false;
    try {
      isFile = statSync(file).isFile();
    } catch {
      this.fail(path, `file not found: ${file}`);
    }
    if (!isFile) this.fail(path, `is not a file: ${file}`);
  }

  // Ports of services that share a process must differ.
  checkPorts(center: Config["center"], engine: Config["engine"]): void {
    const centerPorts: [string, number][] = [
      ["center.registry.port", center.registry.port],
      ["center.apiServer.port", center.apiServer.port],
    ];
    const enginePorts: [string, number][] = [
      ["engine.meshPoint.port", engine.meshPoint.port],
      ["engine.apiServer.port", engine.apiServer.port],
      ...engine.servers.map((s, i): [string, number] => [`engine.servers[${i}].port`, s.port]),
    ];
    const groups =
      this.mode === "center" || this.mode === "engine"
        ? [centerPorts, enginePorts]
        : [[...centerPorts, ...enginePorts]];
    for (const group of groups) {
      const seen = new Map<number, string>();
      for (const [path, port] of group) {
        const first = seen.get(port);
        if (first) this.fail(path, `${port} is already used by ${first}`);
        seen.set(port, path);
      }
    }
  }
}
