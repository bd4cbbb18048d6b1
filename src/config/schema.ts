// Types and defaults for conf/connmix.yaml (spec §3). After loadConfig every field is set.

export type LogLevel = "debug" | "info" | "warn" | "error";
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export type Protocol = "websocket" | "socket";
export const PROTOCOLS: readonly Protocol[] = ["websocket", "socket"];

export type Role = "read" | "write";

/** Which node of a config a process runs (the CLI commands; `single`: center and engine in one process). */
export type Mode = "center" | "engine" | "dev" | "single";
export const MODES: readonly Mode[] = ["center", "engine", "dev", "single"];

/** Callback convention of a server's entry (src/engine/convention.ts); auto reads it from the script. */
export type ConventionSetting = "auto" | "1.0.1" | "1.0.3";
export const CONVENTIONS: readonly ConventionSetting[] = ["auto", "1.0.1", "1.0.3"];
export const ROLES: readonly Role[] = ["read", "write"];

export interface LoggingConfig {
  filename: string; // relative to the working directory
  maxFiles: number; // rotated files kept; 0 keeps all
  level: LogLevel;
}

export interface SummaryConfig {
  maxAge: number; // seconds
  ageBuckets: number;
  bufCap: number;
}

export interface PrometheusConfig {
  summary: SummaryConfig;
}

export interface AccessUser {
  username: string;
  password: string;
  roles: Role[];
  host: string; // glob on the caller's IP, e.g. "*" or "172.*.*.*"
}

export interface AccessConfig {
  users: AccessUser[]; // empty: the APIs answer loopback clients only (protected mode)
  origins: string[]; // globs of the Origin headers (browser pages) the APIs accept; others get 403
}

export interface ListenConfig {
  port: number;
  bind: string;
}

/** Membership timings; every engine takes them from its center when it registers (docs/cluster.md). */
export interface RegistryConfig extends ListenConfig {
  heartbeat: number; // ms between an engine's heartbeats
  dropTimeout: number; // ms without a heartbeat before the center drops a node
  doubtTimeout: number; // ms a node dropped while maybe alive still counts as a failed peer
}

/** `tls` of a listener: PEM files (absolute after loading), checked for changes every reloadCheck seconds. */
export interface TlsConfig {
  cert: string;
  key: string;
  reloadCheck: number; // seconds; 0 = never re-read
}

/** Seconds between checks of the TLS files when `reloadCheck` is not given. */
export const TLS_RELOAD_CHECK = 10;

/** A listener that may speak TLS (tls null: plain). */
export interface TlsListenConfig extends ListenConfig {
  tls: TlsConfig | null;
}

export interface CenterConfig {
  registry: RegistryConfig;
  apiServer: TlsListenConfig;
}

export interface ApiServerConfig extends TlsListenConfig {
  readBufferSize: number;
  writeBufferSize: number;
  readTimeout: number; // seconds
  writeTimeout: number; // seconds
}

export interface QueueConfig {
  topicSize: number;
  maxTopics: number;
  /** "memory", or the name of an engine.luavm.redis pool that keeps the items in Redis Streams. */
  backend: string;
  /** Seconds a stopping engine gives connected consumers to take what is queued. */
  shutdownTimeout: number;
  /** Redis backend: seconds after which items delivered by an engine that is gone are claimed by another. */
  claimIdle: number;
}

export interface RedisConfig {
  name: string;
  addr: string; // host:port
  password: string;
  db: number;
  poolSize: number;
  minIdleConns: number;
  maxConnAge: number; // seconds, 0 = no limit
  idleTimeout: number; // seconds
  // go-redis's timeouts, in seconds; 0 = no limit
  dialTimeout: number;
  readTimeout: number; // a blocking command (BLPOP ...) waits its own timeout plus this
  poolTimeout: number; // how long a command waits for a connection when all poolSize are busy
}

export interface LuaVmConfig {
  callbackTimeout: number; // ms a callback may run without yielding before it is aborted; 0 = no limit
  memoryLimit: number; // MiB each Lua state may hold; 0 = no limit
  queue: QueueConfig;
  redis: RedisConfig[];
}

export interface ServerOption {
  name: string;
  value: string;
}

export interface ServerConfig {
  port: number;
  bind: string;
  protocol: Protocol;
  options: ServerOption[];
  entry: string; // absolute path after loading (resolved against the working directory)
  byteCodeExpires: number; // seconds; 0 disables hot reload
  readBufferSize: number;
  writeBufferSize: number;
  readTimeout: number; // seconds
  writeTimeout: number; // seconds
  convention: ConventionSetting;
  tls: TlsConfig | null; // wss / TLS straight to the clients, no proxy needed
}

export interface WorkersConfig {
  restartDelay: number; // ms before a crashed worker (one that had run a while) is started again
  rebalanceDelay: number; // ms after a worker (re)started before the client split is checked and evened out
}

export interface EngineConfig {
  centerRegistry: string; // host:port
  /** Seconds a draining engine (after a reload) serves its clients before closing them (1012). */
  drainTimeout: number;
  meshPoint: ListenConfig;
  apiServer: ApiServerConfig;
  luavm: LuaVmConfig;
  workers: WorkersConfig;
  servers: ServerConfig[];
}

/** Mutual TLS for the registry and mesh links: this node's certificate and key, and the CA peers' must chain to. */
export interface ClusterTlsConfig {
  cert: string; // absolute paths after loading
  key: string;
  ca: string;
}

export interface ClusterConfig {
  /** Shared secrets of the registry and mesh links: proves with the first, accepts any. Empty: protected mode. */
  secret: string[];
  /** Where `secret` was read from (a mounted Kubernetes Secret), re-read when it changes; "" for none. */
  secretFile: string;
  tls: ClusterTlsConfig | null;
}

export interface Config {
  logging: LoggingConfig;
  prometheus: PrometheusConfig;
  access: AccessConfig;
  cluster: ClusterConfig;
  center: CenterConfig;
  engine: EngineConfig;
}

export function defaultRedis(): RedisConfig {
  return {
    name: "default",
    addr: "localhost:6379",
    password: "",
    db: 0,
    poolSize: 20,
    minIdleConns: 10,
    maxConnAge: 0,
    idleTimeout: 300,
    dialTimeout: 5,
    readTimeout: 3,
    poolTimeout: 4,
  };
}

// Defaults for a server entry; port and entry have no default inside a user's list.
export function defaultServer(): Omit<ServerConfig, "port" | "entry"> {
  return {
    bind: "0.0.0.0",
    protocol: "websocket",
    options: [],
    byteCodeExpires: 10,
    readBufferSize: 1024,
    writeBufferSize: 1024,
    readTimeout: 60,
    writeTimeout: 10,
    convention: "auto",
    tls: null,
  };
}

export function defaultConfig(): Config {
  return {
    logging: { filename: "logs/connmix.log", maxFiles: 7, level: "debug" },
    prometheus: { summary: { maxAge: 600, ageBuckets: 5, bufCap: 500 } },
    access: { users: [], origins: [] },
    cluster: { secret: [], secretFile: "", tls: null },
    center: {
      registry: { port: 6786, bind: "0.0.0.0", heartbeat: 1000, dropTimeout: 5000, doubtTimeout: 30_000 },
      apiServer: { port: 6787, bind: "0.0.0.0", tls: null },
    },
    engine: {
      centerRegistry: "localhost:6786",
      drainTimeout: 60,
      meshPoint: { port: 6788, bind: "0.0.0.0" },
      apiServer: {
        port: 6789,
        bind: "0.0.0.0",
        readBufferSize: 40096,
        writeBufferSize: 40096,
        readTimeout: 60,
        writeTimeout: 60,
        tls: null,
      },
      luavm: { callbackTimeout: 1000, memoryLimit: 256, queue: { topicSize: 2000, maxTopics: 100, backend: "memory", shutdownTimeout: 5, claimIdle: 60 }, redis: [defaultRedis()] },
      workers: { restartDelay: 0, rebalanceDelay: 2000 },
      servers: [
        {
          ...defaultServer(),
          port: 6790,
          options: [{ name: "path", value: "/chat" }],
          entry: "lua/entry.websocket.lua",
        },
      ],
    },
  };
}
