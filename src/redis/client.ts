// A small Redis client (RESP2 over Bun.connect) with a pool shaped by an `engine.luavm.redis` entry.
//
// Why not Bun's RedisClient: its send() decodes every bulk string as UTF-8, so binary values come back
// mangled (0xff turns into U+FFFD), and it speaks RESP3, so HGETALL and CONFIG GET become objects and
// ZSCORE a float instead of the flat RESP2 replies scripts written for the original gateway expect.
import type { Socket } from "bun";
import type { RedisConfig } from "../config/schema";

/** An error reply of the server (`-ERR ...`). */
export class ReplyError {
  constructor(readonly message: string) {}
}
/** A RESP2 reply: nil, integer, status text, bulk bytes, error, or an array of replies. */
export type Reply = null | number | string | Uint8Array | ReplyError | Reply[];
export type Arg = string | Uint8Array;

/** Commands whose effect lives on one connection; a pooled command runs on any connection, so they are refused. */
const STATEFUL = new Set(["subscribe", "psubscribe", "ssubscribe", "monitor", "select", "multi", "watch"]);

/** How long a reply may take (ms): blocking commands wait their own timeout (0 = forever) plus `replyMs`. */
function replyTimeout(cmd: string, args: Arg[], replyMs: number): number {
  let seconds: number;
  if (cmd === "blmpop" || cmd === "bzmpop") seconds = Number(String(args[0]));
  else if (cmd.startsWith("bl") || cmd.startsWith("br") || cmd.startsWith("bz")) seconds = Number(String(args[args.length - 1]));
  else if (cmd === "xread" || cmd === "xreadgroup") {
    const i = args.findIndex((a) => String(a).toLowerCase() === "block");
    if (i < 0) return replyMs;
    seconds = Number(String(args[i + 1])) / 1000;
  } else if (cmd === "wait") seconds = Number(String(args[1])) / 1000;
  else return replyMs;
  if (seconds === 0 || replyMs === 0) return 0;
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 + replyMs : replyMs;
}

const CRLF = Buffer.from("\r\n");
const EMPTY = Buffer.alloc(0);
const INCOMPLETE = Symbol("incomplete");
const OPENED = Symbol("array opened");

/** Incremental RESP2 parser: feed it chunks, it emits every complete top-level reply. */
export class Parser {
  private buf: Buffer = EMPTY; // unparsed bytes, starting at pos
  private pos = 0;
  private chunks: Buffer[] = []; // arrived while waiting for `need` bytes
  private buffered = 0;
  private need = 0; // bytes (from the start of buf) a pending bulk string needs before parsing is worth it
  private readonly stack: { items: Reply[]; left: number }[] = [];

  constructor(private readonly emit: (r: Reply) => void) {}

  feed(chunk: Buffer): void {
    this.buffered += chunk.length;
    if (this.buffered < this.need) {
      this.chunks.push(chunk);
      return;
    }
    this.buf = this.buf.length === 0 && this.chunks.length === 0 ? chunk : Buffer.concat([this.buf, ...this.chunks, chunk]);
    this.chunks = [];
    this.pos = 0;
    this.need = 0;
    while (this.pos < this.buf.length) {
      const v = this.value();
      if (v === INCOMPLETE) break;
      if (v !== OPENED) this.complete(v);
    }
    this.buf = this.pos < this.buf.length ? this.buf.subarray(this.pos) : EMPTY;
    this.buffered = this.buf.length;
  }

  private value(): Reply | typeof INCOMPLETE | typeof OPENED {
    const b = this.buf;
    const start = this.pos;
    const end = b.indexOf(CRLF, start + 1);
    if (end < 0) return INCOMPLETE;
    const type = b[start];
    const next = end + 2;
    switch (type) {
      case 0x2b: // + status
        this.pos = next;
        return b.toString("utf8", start + 1, end);
      case 0x2d: // - error
        this.pos = next;
        return new ReplyError(b.toString("utf8", start + 1, end));
      case 0x3a: // : integer
        this.pos = next;
        return Number(b.toString("latin1", start + 1, end));
      case 0x24: { // $ bulk string
        const n = Number(b.toString("latin1", start + 1, end));
        if (n < 0) {
          this.pos = next;
          return null;
        }
        if (b.length < next + n + 2) {
          this.need = next + n + 2 - start;
          return INCOMPLETE;
        }
        this.pos = next + n + 2;
        return new Uint8Array(b.subarray(next, next + n)); // a copy: the chunk may be reused
      }
      case 0x2a: { // * array
        const n = Number(b.toString("latin1", start + 1, end));
        this.pos = next;
        if (n < 0) return null;
        if (n === 0) return [];
        this.stack.push({ items: [], left: n });
        return OPENED;
      }
      default:
        throw new Error(`redis: protocol error (unexpected byte 0x${(type ?? 0).toString(16)})`);
    }
  }

  private complete(v: Reply): void {
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (!top) return this.emit(v);
      top.items.push(v);
      if (--top.left > 0) return;
      this.stack.pop();
      v = top.items;
    }
  }
}

function encode(args: Arg[]): Buffer {
  const parts: (string | Uint8Array)[] = [`*${args.length}\r\n`];
  for (const a of args) {
    const bytes = typeof a === "string" ? Buffer.from(a) : a;
    parts.push(`$${bytes.length}\r\n`, bytes, "\r\n");
  }
  return Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : p)));
}

interface Waiter {
  resolve(r: Reply): void;
  reject(e: Error): void;
  timer: Timer | undefined;
}

/** One TCP connection to Redis; replies come back in request order. */
class Connection {
  private socket: Socket<undefined> | null = null;
  private readonly waiting: Waiter[] = [];
  private unsent: Buffer | null = null; // what the socket did not take yet (backpressure)
  private readonly parser = new Parser((r) => this.reply(r));
  readonly createdAt = Date.now();
  usedAt = this.createdAt;
  closed = false;
  /** Called once, when the connection is gone (either side closed it). */
  onClose: (() => void) | null = null;

  /** Connects, authenticates and selects the database; rejects with a readable reason. */
  static async open(host: string, port: number, { password, db, dialTimeout, readTimeout }: RedisConfig): Promise<Connection> {
    const c = new Connection();
    let timer: Timer | undefined;
    const dial = Bun.connect<undefined>({
      hostname: host,
      port,
      socket: {
        data: (_s, chunk) => c.data(chunk),
        drain: () => c.flush(),
        close: () => c.close("redis: connection closed by the server"),
        error: (_s, e) => c.close(`redis: ${e.message}`),
      },
    });
    const timeout = new Promise<never>((_, reject) => {
      if (dialTimeout > 0) timer = setTimeout(() => reject(new Error(`redis: cannot connect to ${host}:${port} (timeout after ${dialTimeout}s)`)), dialTimeout * 1000);
    });
    try {
      c.socket = await Promise.race([dial, timeout]);
    } catch (e) {
      dial.then((s) => s.end(), () => {});
      throw new Error(dialError(e as NodeJS.ErrnoException, host, port));
    } finally {
      clearTimeout(timer);
    }
    try {
      const hello: Promise<Reply>[] = [];
      if (password !== "") hello.push(c.send(["AUTH", password], readTimeout * 1000));
      if (db !== 0) hello.push(c.send(["SELECT", String(db)], readTimeout * 1000));
      for (const r of await Promise.all(hello)) if (r instanceof ReplyError) throw new Error(r.message);
    } catch (e) {
      c.close("");
      throw e;
    }
    return c;
  }

  /** Sends one command; `ms` = 0 waits for the reply forever. */
  send(args: Arg[], ms: number): Promise<Reply> {
    if (this.closed) return Promise.reject(new Error("redis: connection closed"));
    return new Promise<Reply>((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined };
      if (ms > 0) w.timer = setTimeout(() => this.close(`redis: timeout after ${ms / 1000}s`), ms);
      this.waiting.push(w);
      this.write(encode(args));
    });
  }

  private write(b: Buffer): void {
    if (this.unsent) {
      this.unsent = Buffer.concat([this.unsent, b]);
      return;
    }
    const n = Math.max(this.socket!.write(b), 0);
    if (n < b.length) this.unsent = b.subarray(n);
  }

  private flush(): void {
    const b = this.unsent;
    if (!b || !this.socket) return;
    this.unsent = null;
    this.write(b);
  }

  private data(chunk: Buffer): void {
    try {
      this.parser.feed(chunk);
    } catch (e) {
      this.close((e as Error).message);
    }
  }

  private reply(r: Reply): void {
    const w = this.waiting.shift();
    if (!w) return this.close("redis: reply without a request");
    clearTimeout(w.timer);
    w.resolve(r);
  }

  /** Closes the socket and fails every pending command with `reason`. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.end();
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(reason));
    }
    this.onClose?.();
  }
}

function dialError(e: NodeJS.ErrnoException, host: string, port: number): string {
  if (e.message.startsWith("redis:")) return e.message;
  if (e.code === "ECONNREFUSED") return `redis: connection refused (${host}:${port})`;
  if (e.code === "ENOTFOUND") return `redis: cannot resolve host ${host}`;
  return `redis: cannot connect to ${host}:${port} (${e.code ?? e.message})`;
}

/** Splits `host:port` (or `[v6]:port`). */
function splitAddr(addr: string): [string, number] {
  const i = addr.lastIndexOf(":");
  return [addr.slice(0, i).replace(/^\[(.*)\]$/, "$1"), Number(addr.slice(i + 1))];
}

/**
 * Connections to one configured Redis. Each command takes a connection to itself for the round trip (so a
 * BLPOP does not hold up others), opening new ones up to `poolSize`; past that, commands wait for a free
 * one up to `poolTimeout`. Connections idle longer than `idleTimeout` or older than `maxConnAge` are closed, and
 * once the pool has been used it keeps `minIdleConns` idle connections open.
 */
export class RedisPool {
  readonly name: string;
  private readonly host: string;
  private readonly port: number;
  private readonly idle: Connection[] = [];
  private readonly queue: { resolve(c: Connection): void; reject(e: Error): void; timer: Timer | undefined }[] = [];
  private total = 0; // open or opening
  private opening = 0;
  private reaper: Timer | undefined;
  private stopped = false;

  constructor(private readonly config: RedisConfig) {
    this.name = config.name;
    [this.host, this.port] = splitAddr(config.addr);
  }

  /** Runs one command: resolves with the reply (a ReplyError for `-ERR`), rejects on connection problems. */
  async command(name: string, args: Arg[]): Promise<Reply> {
    const cmd = name.toLowerCase();
    if (STATEFUL.has(cmd)) {
      throw new Error(`redis: ${cmd} is not supported (each command may run on a different pooled connection; use EVAL for atomic sequences and the db setting to choose a database)`);
    }
    if (this.stopped) throw new Error("redis: the engine is stopping");
    const conn = await this.acquire();
    let reply: Reply;
    try {
      reply = await conn.send([name, ...args], replyTimeout(cmd, args, this.config.readTimeout * 1000));
    } finally {
      this.release(conn);
    }
    this.fill();
    return reply;
  }

  private async acquire(): Promise<Connection> {
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (this.fresh(c)) return c;
      c.close("");
    }
    if (this.total < this.config.poolSize) return this.grow();
    const { poolSize, poolTimeout } = this.config;
    return new Promise<Connection>((resolve, reject) => {
      const timer = poolTimeout > 0 ? setTimeout(() => {
        this.queue.splice(this.queue.findIndex((w) => w.timer === timer), 1);
        reject(new Error(`redis: pool timeout (all ${poolSize} connections busy for ${poolTimeout}s)`));
      }, poolTimeout * 1000) : undefined;
      this.queue.push({ resolve, reject, timer });
    });
  }

  private async grow(): Promise<Connection> {
    this.total++;
    this.opening++;
    this.startReaper();
    try {
      const c = await Connection.open(this.host, this.port, this.config);
      c.onClose = () => this.lost(c);
      return c;
    } catch (e) {
      this.total--;
      throw e;
    } finally {
      this.opening--;
    }
  }

  private release(c: Connection): void {
    if (c.closed) return;
    if (this.stopped || !this.fresh(c)) return c.close("");
    const w = this.queue.shift();
    if (w) {
      clearTimeout(w.timer);
      return w.resolve(c);
    }
    c.usedAt = Date.now();
    this.idle.push(c);
  }

  /** A connection closed (by us, the server, or a timeout): make room, and serve a waiting command. */
  private lost(c: Connection): void {
    this.total--;
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    const w = this.queue.shift();
    if (!w || this.stopped) return;
    clearTimeout(w.timer);
    this.grow().then(w.resolve, w.reject);
  }

  private fresh(c: Connection): boolean {
    const now = Date.now();
    const { idleTimeout, maxConnAge } = this.config;
    return !c.closed && (idleTimeout === 0 || now - c.usedAt < idleTimeout * 1000) && (maxConnAge === 0 || now - c.createdAt < maxConnAge * 1000);
  }

  /** Opens idle connections up to minIdleConns in the background; failures wait for the next command. */
  private fill(): void {
    const want = Math.min(this.config.minIdleConns, this.config.poolSize);
    while (!this.stopped && this.idle.length + this.opening < want && this.total < this.config.poolSize) {
      this.grow().then((c) => this.release(c), () => {});
    }
  }

  private startReaper(): void {
    const { idleTimeout, maxConnAge } = this.config;
    const limits = [idleTimeout, maxConnAge].filter((s) => s > 0);
    if (this.reaper || limits.length === 0) return;
    const every = Math.min(60, ...limits) * 1000;
    this.reaper = setInterval(() => {
      for (const c of [...this.idle]) if (!this.fresh(c)) c.close("");
    }, every);
    this.reaper.unref();
  }

  /** Closes every connection and fails waiting commands. */
  close(): void {
    this.stopped = true;
    clearInterval(this.reaper);
    for (const w of this.queue.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error("redis: the engine is stopping"));
    }
    for (const c of [...this.idle]) c.close("");
  }
}

/** The pools of `engine.luavm.redis`, by name. Nothing connects until a script runs a command. */
export function redisPools(configs: RedisConfig[]): Map<string, RedisPool> {
  return new Map(configs.map((c) => [c.name, new RedisPool(c)]));
}
