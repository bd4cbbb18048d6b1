// The engine node: every connection it holds, channel membership, and local delivery. Remote delivery
// (other workers and nodes) goes through `peers`, which it is given at construction: the mesh, a multi-core
// engine's worker router, or a worker's link to its primary.
import { ClientIds, nodeOf, workerOf } from "../net/client-ids";
import { noRefusals, type RefusalCounts } from "../net/refusals";
import { WsConnection, type Connection } from "./connection";
import type { SendType } from "./host";
import type { LuaServer } from "./lua-server";
import { CONN_CALL } from "./mix/contract";
import type { Queues } from "../queue/queues";
import { localClients, type ClientsView } from "./introspect";

/** How Peers.notReady's reasons start (the API answers them with its "not ready" code). */
export const NOT_READY = "node not ready";

/** What the mesh offers the node; with no mesh, a node has no peers. */
export interface Peers {
  /** Null when mesh calls can be answered, else why not ("node not ready: ..."); absent: always ready. */
  notReady?(): string | null;
  hasPeers(): boolean;
  sendRemote(id: number, data: Uint8Array | string, type: SendType): Promise<string | null>;
  publishRemote(channel: string, data: Uint8Array | string, type: SendType): Promise<[number, number]>;
  callRemote(id: number, method: string, args: unknown[]): Promise<string | null>;
  /** Requests to other nodes that got no answer from them (absent: a route with no such count). */
  forwardFailures?(): number;
  /** When set, queue items go there rather than to this process's queues (a worker hands them to its primary). */
  queuePush?(topic: string, json: string, clientId: number): Promise<[number, string | null]>;
}

export type Protocol = "websocket" | "socket";

/** Memory of one Lua state: its server (bind:port), the worker running it, bytes held and its limit (0: none). */
export interface LuaMemory {
  server: string;
  worker: number;
  used: number;
  limit: number;
}

const zero = (): Record<Protocol, number> => ({ websocket: 0, socket: 0 });

/** Messages from clients lost before their script saw them, by reason, then protocol (see docs/api.md, Metrics). */
export type DroppedMessages = {
  /** Sent while the connection's backlog was full (the connection is closed). */
  backlog_full: Record<Protocol, number>;
  /** A WebSocket message over MAX_MESSAGE_BYTES (Bun closes the connection), or a socket connection that buffered that much without a package. */
  too_large: Record<Protocol, number>;
  /** Read in the same turn as the engine's close of the connection (the protocol takes no message after a close). */
  after_close: Record<Protocol, number>;
};

/** Counters read by /metrics; plain numbers so the hot path pays one increment. */
export class NodeStats {
  read = zero();
  sent = zero();
  sendErrors = zero();
  /** Lua callback failures and runaway aborts of processes this node sums (a multi-core engine's workers). */
  lua = { errors: 0, timeouts: 0 };
  /** Dropped messages this node counted itself; a node adds its Lua servers' (see NodeView.droppedMessages). */
  droppedMessages: DroppedMessages = { backlog_full: zero(), too_large: zero(), after_close: zero() };
  /** Clients the engine cut off, by reason: what they had not read, or sent and was not processed, is lost. */
  droppedClients = { write_timeout: zero(), backlog_full: zero(), unread_bytes: zero() };
  /** Connections refused at the worker link ports of processes this node sums (a multi-core engine's workers). */
  refusedWorkerLinks: RefusalCounts = noRefusals();
}

/** Adds every counter of `from` to the same field of `into` (numbers, or records of them, as in NodeStats). */
export function addCounters(into: object, from: object): void {
  const a = into as Record<string, unknown>;
  const b = from as Record<string, unknown>;
  for (const k of Object.keys(a)) {
    if (typeof a[k] === "number") a[k] += (b[k] as number | undefined) ?? 0;
    else if (b[k]) addCounters(a[k] as object, b[k] as object);
  }
}

/**
 * A node as the API server, the metrics, the console and the cluster see it: a single-process engine's (or a
 * worker's) EngineNode, which holds connections, or a multi-core engine's PrimaryNode (src/workers/primary.ts),
 * whose clients are its workers'.
 */
export interface NodeView {
  /** The node id (the mesh's; the node index as text without a mesh). */
  readonly name: string;
  /** The node index client ids carry. */
  readonly index: number;
  readonly queues: Queues;
  readonly stats: NodeStats;
  /** The route to clients that are not this process's; null without a mesh. */
  readonly peers: Peers | null;
  /** True when the id is one this process hands out (a client that is not here is not anywhere). */
  isLocal(id: number): boolean;
  /** The protocol of a client of this process; null when it is not here. */
  protocolOf(id: number): Protocol | null;
  sendLocal(id: number, data: Uint8Array | string, type: SendType): string | null | "remote";
  publishLocal(channel: string, data: Uint8Array | string, type: SendType): [number, number];
  callLocal(id: number, method: string, args: unknown[]): string | null | "remote";
  clientCount(): number;
  readCounts(): Record<Protocol, number>;
  luaFailures(): { errors: number; timeouts: number };
  droppedMessages(): DroppedMessages;
  luaMemory(): LuaMemory[];
  clientViews(): Promise<ClientsView[]>;
  renumber(index: number): number | Promise<number>;
  closeClients(code: number, reason: string): number | Promise<number>;
}

export interface NodeOptions {
  /** Where clients of other workers and nodes are reached (none: this node has no peers). */
  peers?: Peers;
  /** The node id (the mesh's); the node index when there is no mesh. */
  name?: string;
}

export class EngineNode implements NodeView {
  readonly connections = new Map<number, Connection>();
  private readonly luaServers: LuaServer[] = [];
  /** Channel -> subscribed socket connections (WebSocket ones use Bun's native topics). */
  private readonly socketChannels = new Map<string, Set<Connection>>();
  readonly stats = new NodeStats();
  readonly peers: Peers | null;
  private readonly nodeId: string | undefined;

  // `ids` is replaced once the center assigns the node index (before any connection exists).
  constructor(public ids: ClientIds, readonly queues: Queues, o: NodeOptions = {}) {
    this.peers = o.peers ?? null;
    this.nodeId = o.name;
  }

  /** The Lua servers listening on this node; a server joins once it listens (src/engine/servers.ts). */
  get servers(): readonly LuaServer[] {
    return this.luaServers;
  }

  addServer(server: LuaServer): void {
    this.luaServers.push(server);
  }

  /**
   * Messages read from clients: WebSocket messages as they arrive, socket ones as protocol_decode made them
   * (each server's Lua side counts those); `stats.read` holds what exited workers and servers counted.
   */
  readCounts(): Record<Protocol, number> {
    let socket = this.stats.read.socket;
    for (const s of this.servers) socket += s.decodedMessages();
    return { websocket: this.stats.read.websocket, socket };
  }

  /** The node id: the mesh's xid, or the node index when this engine runs without one. */
  get name(): string {
    return this.nodeId ?? String(this.ids.node);
  }

  get index(): number {
    return this.ids.node;
  }

  protocolOf(id: number): Protocol | null {
    return this.connections.get(id)?.server.protocol ?? null;
  }

  isLocal(id: number): boolean {
    return nodeOf(id) === this.ids.node && workerOf(id) === this.ids.worker;
  }

  /** Client connections of this node (a multi-core engine's primary counts its workers'). */
  clientCount(): number {
    return this.connections.size;
  }

  /** Lua callbacks that failed and those aborted for running too long, on every server of this node. */
  luaFailures(): { errors: number; timeouts: number } {
    let { errors, timeouts } = this.stats.lua;
    for (const s of this.servers) {
      errors += s.vm.scheduler.errors;
      timeouts += s.vm.scheduler.timeouts;
    }
    return { errors, timeouts };
  }

  /** Messages dropped: what this node counted plus what its Lua servers did (full backlogs, oversized socket buffers). */
  droppedMessages(): DroppedMessages {
    const { backlog_full, too_large, after_close } = this.stats.droppedMessages;
    const full = { ...backlog_full };
    const large = { ...too_large };
    for (const s of this.servers) {
      full[s.protocol] += s.vm.scheduler.dropped;
      large.socket += s.oversizedBacklogs();
    }
    return { backlog_full: full, too_large: large, after_close: { ...after_close } };
  }

  /** Clients and channels for the console (a multi-core engine's primary asks its workers). */
  async clientViews(): Promise<ClientsView[]> {
    return [localClients(this)];
  }

  /** Memory of this node's Lua states (a multi-core engine's primary reports its workers'). */
  luaMemory(): LuaMemory[] {
    return this.servers.map((s) => ({
      server: `${s.config.bind}:${s.config.port}`,
      worker: this.ids.worker,
      used: s.vm.memoryBytes(),
      limit: s.vm.memoryLimit,
    }));
  }

  /**
   * The center assigned another node index: new ids carry it, and the connections handed an old id are
   * closed (their ids no longer route here). Returns how many were closed (a primary: once its workers said).
   */
  renumber(index: number): number | Promise<number> {
    this.ids = new ClientIds(index, this.ids.worker);
    return this.closeClients(1012, "node index changed, reconnect");
  }

  /**
   * Closes the `count` newest connections (all by default) with a WebSocket close code (socket connections
   * just close); returns how many were closed (a primary: once its workers said).
   */
  closeClients(code: number, reason: string, count = Infinity): number | Promise<number> {
    const conns = [...this.connections.values()];
    const from = Math.max(0, conns.length - count);
    for (let i = conns.length - 1; i >= from; i--) conns[i]!.server.closeConnection(conns[i]!, code, reason);
    return conns.length - from;
  }

  sendLocal(id: number, data: Uint8Array | string, type: SendType, raw = false): string | null | "remote" {
    const conn = this.connections.get(id);
    if (!conn) return this.isLocal(id) ? "client not found" : "remote";
    const protocol = conn.server.protocol;
    const err = conn.server.sendTo(conn, data, type, raw);
    if (err === null) this.stats.sent[protocol]++;
    else this.stats.sendErrors[protocol]++;
    return err;
  }

  /** Publishes to local subscribers; returns [delivered, failed]. */
  publishLocal(channel: string, data: Uint8Array | string, type: SendType): [number, number] {
    let ok = 0;
    let fail = 0;
    for (const server of this.servers) {
      const n = server.publishNative(channel, data, type);
      ok += n[0];
      fail += n[1];
    }
    this.stats.sent.websocket += ok;
    const subscribers = this.socketChannels.get(channel);
    if (subscribers && subscribers.size > 0) {
      // protocol_encode runs once per server, not once per subscriber.
      const encoded = new Map<LuaServer, Uint8Array | string>();
      for (const conn of subscribers) {
        const server = conn.server;
        let bytes = encoded.get(server);
        if (bytes === undefined) encoded.set(server, (bytes = server.encode(typeof data === "string" ? Buffer.from(data) : data, undefined, type)));
        if (typeof bytes !== "string" && server.sendTo(conn, bytes, type, true) === null) ok++, this.stats.sent.socket++;
        else fail++, this.stats.sendErrors.socket++;
      }
    }
    return [ok, fail];
  }

  subscribe(id: number, channels: string[]): string | null {
    const conn = this.connections.get(id);
    if (!conn) return "client not found";
    const ws = conn instanceof WsConnection ? conn.ws : null;
    if (ws) {
      conn.server.flushHeld(); // publications made before the subscription do not reach it
      for (const ch of channels) ws.subscribe(ch);
      return null;
    }
    // Socket connections, and WebSocket ones still in on_handshake (subscribed natively once open).
    for (const ch of channels) (conn.channels ??= new Set()).add(ch);
    if (conn.server.protocol === "socket") {
      for (const ch of channels) {
        let set = this.socketChannels.get(ch);
        if (!set) this.socketChannels.set(ch, (set = new Set()));
        set.add(conn);
      }
    }
    return null;
  }

  unsubscribe(id: number, channels: string[]): string | null {
    const conn = this.connections.get(id);
    if (!conn) return "client not found";
    const ws = conn instanceof WsConnection ? conn.ws : null;
    if (ws) {
      conn.server.flushHeld(); // publications made before it still reach the connection
      for (const ch of channels) ws.unsubscribe(ch);
    } else {
      for (const ch of channels) this.leave(conn, ch);
    }
    return null;
  }

  private leave(conn: Connection, channel: string): void {
    const set = this.socketChannels.get(channel);
    set?.delete(conn);
    if (set?.size === 0) this.socketChannels.delete(channel);
    conn.channels?.delete(channel);
  }

  /** Forgets a closed connection. */
  remove(conn: Connection): void {
    this.connections.delete(conn.id);
    if (conn.channels) for (const ch of [...conn.channels]) this.leave(conn, ch);
  }

  /**
   * conn.call on a connection of this node: runs set_context_value, set_context, subscribe or unsubscribe
   * in its server's Lua VM (a context change releases a pending wait_context_value). Null on success.
   */
  callLocal(id: number, method: string, args: unknown[]): string | null | "remote" {
    const conn = this.connections.get(id);
    if (!conn) return this.isLocal(id) ? "client not found" : "remote";
    try {
      const err = conn.server.vm.call(CONN_CALL, id, method, args);
      return typeof err === "string" ? err : null;
    } catch (e) {
      return (e as Error).message;
    }
  }

  close(id: number): string | null {
    const conn = this.connections.get(id);
    if (!conn) return "client not found";
    conn.server.closeConnection(conn, 1000, "");
    return null;
  }
}
