// What every Lua-driven server shares: its configuration, its Lua VM, and the EngineHost the VM's API
// families talk to. websocket-server.ts and socket-server.ts add the transport.
import { resolve } from "node:path";
import { LuaVM } from "../lua/vm";
import { MAX_BACKLOG_BYTES, MAX_BACKLOG_EVENTS } from "../lua/scheduler";
import { log } from "../log/logger";
import { SWEEP_MS } from "./limits";
import type { LuaFamily } from "../lua/family";
import type { ServerConfig } from "../config/schema";
import type { Connection, Opening } from "./connection";
import type { EngineHost, SendType } from "./host";
import type { EngineNode, Protocol } from "./node";
import { applyConvention, type Convention } from "./convention";
import { DECODED, ENCODE, INIT, LuaEvents, OVERSIZED } from "./mix/contract";
import type { HotConfig } from "../config/hot";
import type { RedisCommands } from "./host";

export interface LuaServerOptions {
  config: ServerConfig;
  node: EngineNode;
  families: LuaFamily<EngineHost>[];
  /** Runaway-callback budget, ms. */
  budgetMs?: number;
  /** Bytes each Lua state may hold; 0 or absent: no limit. */
  memoryLimit?: number;
  /** Pools of `engine.luavm.redis`, by name. */
  redis?: Map<string, RedisCommands>;
  /** Share the port with the other workers of a multi-core engine (SO_REUSEPORT: the kernel spreads connections). */
  reusePort?: boolean;
  /** How often readTimeout and writeTimeout are checked, ms (SWEEP_MS by default; tests shorten it). */
  sweepMs?: number;
  /** The process's hot config: readTimeout and writeTimeout follow edits (none: they stay). */
  hot?: HotConfig;
}

export abstract class LuaServer {
  abstract readonly protocol: Protocol;
  readonly vm: LuaVM<EngineHost>;
  /** The events this server delivers to its Lua side, typed by the contract. */
  protected readonly events: LuaEvents;
  readonly config: ServerConfig;
  readonly node: EngineNode;
  readonly entry: string;
  protected readonly reusePort: boolean;
  private readonly options: Map<string, string>;
  private readonly redis: Map<string, RedisCommands> | undefined;
  /** Sweeps counted by the sweep timer; reads stamp their connection with it (no clock call per read). */
  protected tick = 0;
  /** Sweeps per second: readTimeout (seconds) times this is a number of ticks. */
  protected readonly ticksPerSecond: number;
  private readonly sweepMs: number;
  /** Connections whose writes are backed up, checked against writeTimeout. */
  protected readonly stalled = new Set<Connection>();
  private sweeper: Timer | undefined;
  /** The callback convention of the entry as loaded last (spec §4.2). */
  convention: Convention | undefined;
  /** readTimeout and writeTimeout (seconds) for new connections; a config edit changes them. */
  private timeouts: { read: number; write: number };
  private readonly hot: HotConfig | undefined;
  private unfollow: (() => void) | undefined;

  constructor(opts: LuaServerOptions) {
    this.config = opts.config;
    this.node = opts.node;
    this.entry = resolve(opts.config.entry);
    this.options = new Map(opts.config.options.map((o) => [o.name, String(o.value)]));
    this.redis = opts.redis;
    this.reusePort = opts.reusePort ?? false;
    this.sweepMs = opts.sweepMs ?? SWEEP_MS;
    this.ticksPerSecond = 1000 / this.sweepMs;
    this.hot = opts.hot;
    this.timeouts = { read: opts.config.readTimeout, write: opts.config.writeTimeout };
    this.vm = new LuaVM({
      entry: this.entry,
      families: opts.families,
      budgetMs: opts.budgetMs,
      memoryLimit: opts.memoryLimit,
      reloadSeconds: opts.config.byteCodeExpires,
      host: this.host(),
      onLoad: (vm) => this.loaded(vm),
    });
    this.events = new LuaEvents(this.vm.scheduler);
  }

  /** After each load of the entry: its convention, then its init() if it has one (1.0.1 scripts do). */
  private loaded(vm: LuaVM<EngineHost>): void {
    this.detectConvention(vm);
    vm.call(INIT);
  }

  /** Logged once per node: by worker 0 of a multi-core engine, whose workers all load the same files. */
  private detectConvention(vm: LuaVM<EngineHost>): void {
    const { convention, why, disagree } = applyConvention(vm, this.config.convention);
    if (convention === this.convention) return;
    const was = this.convention ? ` (was ${this.convention})` : "";
    this.convention = convention;
    if (this.node.ids.worker !== 0) return;
    const line = `lua server ${this.entry} uses the ${convention} callback convention${was}: ${why}`;
    if (disagree) log.warn(line);
    else log.info(line);
  }

  /** Messages protocol_decode produced on a socket server (its Lua side counts them); 0 for WebSocket. */
  decodedMessages(): number {
    return (this.decoded = this.socketCount(DECODED, this.decoded));
  }
  private decoded = 0;

  /** Socket connections closed for buffering more than MAX_MESSAGE_BYTES without a whole package; 0 for WebSocket. */
  oversizedBacklogs(): number {
    return (this.oversized = this.socketCount(OVERSIZED, this.oversized));
  }
  private oversized = 0;

  /** A count the socket family's Lua side keeps (the last one read once the VM closed); 0 for WebSocket. */
  private socketCount(hook: typeof DECODED, last: number): number {
    if (this.protocol !== "socket") return 0;
    return this.vm.closed ? last : Number(this.vm.call(hook)) || 0;
  }

  option(name: string): string | undefined {
    return this.options.get(name);
  }

  /**
   * Writes to one connection of this server; null on success, else why not. `raw` bytes skip the
   * socket protocol's protocol_encode (conn:send); pushed data (mesh, API) goes through it.
   */
  abstract sendTo(conn: Connection, data: Uint8Array | string, type: SendType, raw: boolean): string | null;
  /**
   * Publishes to the subscribers the transport keeps itself (Bun's WebSocket topics); [delivered, failed].
   * Subscribers the node keeps (socket connections) are not counted here.
   */
  abstract publishNative(channel: string, data: Uint8Array | string, type: SendType): readonly [number, number];
  abstract closeConnection(conn: Connection, code: number, reason: string): void;
  /** Does the writes a transport holds back (the WebSocket outbox), before a subscription changes. */
  flushHeld(): void {}
  /** Drops a connection at once, without a closing handshake (a client that does not read). */
  protected abstract terminate(conn: Connection): void;
  /**
   * protocol_encode(data, conn, "text"|"binary") of a socket server's script (no conn for a publish); an
   * error text when it fails or returns nothing usable.
   */
  encode(bytes: Uint8Array, id?: number, type: SendType = 1): Uint8Array | string {
    try {
      const out = this.vm.call(ENCODE, bytes, id, type);
      return out instanceof Uint8Array ? out : "protocol_encode returned no data";
    } catch (e) {
      log.error(`protocol_encode failed: ${(e as Error).message}`);
      return "protocol_encode failed";
    }
  }

  /** Starts listening; resolves once the port is bound. */
  abstract listen(): Promise<void>;
  /** Stops accepting and closes every connection (WebSocket close 1001). */
  abstract stop(): Promise<void>;

  /** What a connection opened now starts with: a new id, this server's read tick and its timeouts. */
  protected opening(remoteAddr: string): Opening {
    return { id: this.node.ids.next(), server: this, remoteAddr, readTick: this.tick, readTimeout: this.timeouts.read, writeTimeout: this.timeouts.write };
  }

  /** Registers a new connection with the node. */
  protected accept<C extends Connection>(conn: C): C {
    this.node.connections.set(conn.id, conn);
    return conn;
  }

  /**
   * Starts the check of readTimeout and writeTimeout every sweepMs, and follows config edits of them: the
   * server of an edited file with the same bind and port is this one (ports are unique per node).
   */
  protected startSweeping(): void {
    this.sweeper = setInterval(() => {
      this.dropIdle();
      this.dropStalled();
      this.sweep(this.tick);
    }, this.sweepMs);
    this.unfollow = this.hot?.follow(["engine.servers[].readTimeout", "engine.servers[].writeTimeout"], (next) => {
      const sc = next.engine.servers.find((s) => s.port === this.config.port && s.bind === this.config.bind);
      if (sc) this.timeouts = { read: sc.readTimeout, write: sc.writeTimeout };
    });
  }

  /** More checks a transport makes at each sweep (`tick` counts the sweeps). */
  protected sweep(_tick: number): void {}

  protected stopSweeping(): void {
    clearInterval(this.sweeper);
    this.unfollow?.();
  }

  /** Notes that writes to conn started to back up. */
  protected markStalled(conn: Connection): void {
    if (conn.stalledSince) return;
    conn.stalledSince = performance.now();
    this.stalled.add(conn);
  }

  /** Notes that conn took everything written to it, or is gone. */
  protected unstall(conn: Connection): void {
    conn.stalledSince = 0;
    this.stalled.delete(conn);
  }

  /**
   * Closes connections silent for more than readTimeout seconds. Bun's own idle timeouts tick in 4 s
   * steps (8 s at least for WebSocket), too coarse for short readTimeouts.
   */
  private dropIdle(): void {
    const tick = ++this.tick;
    for (const conn of this.node.connections.values()) {
      // A WebSocket still in on_handshake has nothing to close yet; its silence counts from the upgrade.
      if (conn.server === this && conn.readTimeout > 0 && conn.readTick < tick - conn.readTimeout * this.ticksPerSecond && conn.open && conn.closeReason === null && conn.live) {
        conn.closeReason = "read timeout";
        this.closeConnection(conn, 1001, "read timeout");
      }
    }
  }

  /** Drops clients whose writes stayed backed up longer than writeTimeout. */
  private dropStalled(): void {
    const now = performance.now();
    for (const conn of this.stalled) {
      if (conn.stalledSince < now - conn.writeTimeout * 1000) {
        this.unstall(conn);
        conn.closeReason = "write timeout";
        this.node.stats.droppedClients.write_timeout[this.protocol]++;
        log.warn(`client ${conn.id} did not read for ${conn.writeTimeout}s, dropped`);
        this.terminate(conn);
      }
    }
  }

  /** Closes a connection whose unprocessed messages passed the backlog bound (1008 for WebSocket). */
  dropOverflowing(conn: Connection): void {
    if (!conn.open || conn.closeReason !== null) return;
    conn.closeReason = "too many unprocessed messages";
    this.node.stats.droppedClients.backlog_full[this.protocol]++;
    log.warn(`client ${conn.id} sent more than ${MAX_BACKLOG_BYTES} bytes or ${MAX_BACKLOG_EVENTS} messages while its callback waited, closed`);
    this.closeConnection(conn, 1008, conn.closeReason);
  }

  /** Called once per connection when its transport closed: runs on_close after any queued callbacks. */
  protected closed(conn: Connection, err: string | null): void {
    if (!conn.open) return;
    conn.open = false;
    this.unstall(conn);
    this.node.remove(conn);
    conn.wake();
    this.closeEvent(conn, err);
  }

  /** Runs on_close, after any queued callbacks of the connection. */
  protected closeEvent(conn: Connection, err: string | null): void {
    this.events.close(conn, err);
  }

  private host(): EngineHost {
    const node = this.node;
    return {
      option: (name) => this.option(name),
      sendLocal: (id, data, type, raw) => node.sendLocal(id, data, type, raw),
      sendRemote: (id, data, type) => node.peers?.sendRemote(id, data, type) ?? Promise.resolve("client not found"),
      publishLocal: (ch, data, type) => node.publishLocal(ch, data, type),
      hasPeers: () => node.peers?.hasPeers() ?? false,
      publishRemote: (ch, data, type) => node.peers?.publishRemote(ch, data, type) ?? Promise.resolve([0, 0]),
      subscribe: (id, chs) => node.subscribe(id, chs),
      unsubscribe: (id, chs) => node.unsubscribe(id, chs),
      close: (id) => node.close(id),
      queuePush: (topic, json, clientId) => node.queues.push(topic, json, clientId),
      // Durable queues take pushes in Redis, from any process; otherwise a worker's go to its primary.
      queuesElsewhere: () => node.queues.durable || node.peers?.queuePush !== undefined,
      queuePushRemote: (topic, json, clientId) =>
        node.queues.durable ? node.queues.pushDurable(topic, json, clientId) : node.peers!.queuePush!(topic, json, clientId),
      waitContext: (id) =>
        new Promise<void>((resolve) => {
          const conn = node.connections.get(id);
          if (!conn || !conn.open) return resolve();
          (conn.waiters ??= []).push(resolve);
        }),
      wake: (id) => node.connections.get(id)?.wake(),
      handshakeResult: (id, accept, status, message) => this.handshakeResult(id, accept, status, message),
      nodeIndex: () => node.index,
      redis: (name) => this.redis?.get(name),
    };
  }

  protected handshakeResult(_id: number, _accept: boolean, _status: number, _message: string): void {}

  /** A handover: the listener closes (the successor's takes the port); the connections go on. */
  abstract stopAccepting(): void;

  /** Closes every connection of this server: WebSocket ones with `code`, socket ones once their pending bytes are written. */
  closeAll(code: number, reason: string): void {
    for (const conn of this.node.connections.values()) if (conn.server === this) this.closeConnection(conn, code, reason);
  }
}
