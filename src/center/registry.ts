// The center's registry server: engines connect, register, heartbeat; the center assigns node indexes
// (the part of client ids that names the node) and pushes the node list to every engine on each change.
// A node silent for `timings.drop` is dropped and the others are told. A fresh center spends its first
// `timings.drop` "unsettled": node lists it sends then are partial (engines only add from them), and indexes that
// re-registering engines report for their peers are kept for those peers.
import { log } from "../log/logger";
import { escapeText } from "../log/escape";
import { MAX_NODE } from "../net/client-ids";
import type { Keys } from "../net/auth";
import { Listener, type Conn } from "../net/listener";
import type { TlsMaterial } from "../net/tls";
import { plainIp } from "../net/addr";
import {
  MAX_PEERS, MAX_UNAUTHENTICATED, MAX_UNSENT, REGISTRY_VERSION, TIMINGS, isIpLiteral, readMsg, sendMsg, validIndex, validNodeId, validPort,
  type CenterMsg, type EngineMsg, type LinkTimings, type NodeInfo, type RegisterMsg, type Timings,
} from "./protocol";

/** What a center hands to its successor about one node (src/handover). */
export interface NodeState extends NodeInfo {
  clients: number;
  registeredAt: number; // Unix ms
  /** Handing over to a successor: serves the clients it holds, takes no new ones. */
  draining: boolean;
}

export interface NodeEntry extends NodeState {
  lastBeat: number;
  session: S | null;
}

interface Session {
  node: NodeEntry | null;
}
type S = Conn<Session>;

export interface RegistryOptions {
  keys: Keys;
  tls: TlsMaterial | null;
  /** Membership timings (center.registry); the defaults when omitted. */
  timings?: Timings;
  link: LinkTimings;
}

export class RegistryServer {
  readonly nodes = new Map<string, NodeEntry>();
  private readonly indexes = new Map<number, string>();
  /** Index -> node id, kept for nodes that peers reported while the center is unsettled. */
  private readonly reserved = new Map<number, string>();
  /** Where the search for a free index goes on, so a freed index is reused as late as possible. */
  private cursor = 1 + Math.floor(Math.random() * MAX_NODE);
  private readonly startedAt = performance.now();
  private settled = false;
  /** Registry connections accepted since start (connmix_center_registry_channels_total). */
  connectionsTotal = 0;
  /** Authenticated engines' registry connections closed with an error, by reason (connmix_center_registry_refused_total). */
  readonly refused = { protocol: 0, invalid: 0, address_taken: 0, no_index: 0, not_reading: 0, no_register: 0 };
  /** Authenticated connections that have not registered yet; closed when they take longer than `timings.drop`. */
  private readonly unregistered = new Set<S>();
  private readonly listener: Listener<Session>;
  private readonly timings: Timings;
  private readonly sweepMs: number;
  private sweeper: Timer | undefined;

  constructor(o: RegistryOptions) {
    this.timings = o.timings ?? TIMINGS;
    this.sweepMs = o.link.sweepMs;
    this.listener = new Listener<Session>(
      {
        name: "registry",
        kind: "registry",
        keys: o.keys,
        tls: o.tls,
        maxFrame: MAX_UNSENT,
        maxUnsent: MAX_UNSENT,
        maxUnauthenticated: MAX_UNAUTHENTICATED,
        timings: { handshakeMs: o.link.handshakeMs, idleMs: 0, sweepMs: o.link.sweepMs },
      },
      {
        open: (c) => {
          this.connectionsTotal++;
          this.unregistered.add(c);
          return { node: null };
        },
        frame: (c, f) => this.onFrame(c, f),
        refuse: (c, reason) => this.refuse(c, "protocol", reason),
        close: (c) => this.closed(c),
      },
    );
  }

  listen(bind: string, port: number): void {
    this.listener.listen(bind, port);
    this.sweeper = setInterval(() => this.sweep(), this.sweepMs);
  }

  get port(): number {
    return this.listener.port;
  }

  clients(): number {
    let n = 0;
    for (const e of this.nodes.values()) n += e.clients;
    return n;
  }

  private onFrame(s: S, f: Uint8Array): void {
    const msg = readMsg<EngineMsg>(f);
    if (!msg) return this.refuse(s, "protocol", "malformed registry message");
    const entry = s.data.node;
    if (msg.t === "register") return this.register(s, msg);
    if (!entry) return this.refuse(s, "protocol", "register first");
    if (msg.t === "hb") {
      entry.lastBeat = performance.now();
      if (Number.isInteger(msg.clients) && msg.clients >= 0) entry.clients = msg.clients;
      this.send(s, { t: "hb" });
    } else if (msg.t === "leave") {
      this.drop(entry, "stopped");
    } else if (msg.t === "drain" && !entry.draining) {
      entry.draining = true;
      log.info(`node ${entry.ip} node_id ${entry.id} is draining`);
    }
  }

  /** Why a registration is refused, or null. Everything in it came from the network and is checked here. */
  private problem(s: S, m: RegisterMsg): string | null {
    if (m.v !== REGISTRY_VERSION) return `registry protocol version ${escapeText(String(m.v), 20)} is not supported (the center speaks ${REGISTRY_VERSION})`;
    if (!validNodeId(m.id)) return "invalid node id";
    if (!validPort(m.api_port) || !validPort(m.mesh_port)) return "invalid ports";
    if (m.ip !== "" && !isIpLiteral(m.ip)) return "ip must be an IP address (or empty for the address the center sees)";
    if (m.index !== 0 && !validIndex(m.index)) return "invalid node index";
    if (!Array.isArray(m.peers) || m.peers.length > MAX_PEERS) return `peers must be a list of at most ${MAX_PEERS} [node id, index]`;
    if (m.after !== undefined && !validNodeId(m.after)) return "invalid predecessor node id";
    if (m.draining !== undefined && typeof m.draining !== "boolean") return "draining must be true or false";
    const held = this.nodes.get(m.id);
    if (held && held.session !== s && this.live(held)) return `node_id ${m.id} is registered on another live connection`;
    return null;
  }

  /** A node whose registry connection is open and still heartbeating: nobody else may take its id or address. */
  private live(e: NodeEntry): boolean {
    return e.session !== null && performance.now() - e.lastBeat < 2 * this.timings.hb;
  }

  private register(s: S, m: RegisterMsg): void {
    const bad = this.problem(s, m);
    if (bad) return this.refuse(s, "invalid", bad);
    const now = performance.now();
    const ip = m.ip || plainIp(s.remote);
    let entry = this.nodes.get(m.id);
    // Unsettled, the lists only add: no engine forgot this node. Settled and not listed: they did.
    const listed = !this.settled || entry !== undefined;
    if (entry) {
      // The same node on a new connection (it lost the old one, whose heartbeats stopped).
      if (entry.session && entry.session !== s) this.detach(entry);
      entry.ip = ip;
      entry.api_port = m.api_port;
      entry.mesh_port = m.mesh_port;
    } else {
      // A new node on the mesh address of a listed one that is gone (its connection closed or its heartbeats
      // stopped) replaces it now; a live one keeps its address, unless the newcomer is its successor, which
      // shares its ports while it drains (src/handover).
      for (const e of this.nodes.values()) {
        if (e.ip !== ip || e.mesh_port !== m.mesh_port || e.id === m.after) continue;
        if (this.live(e)) return this.refuse(s, "address_taken", `mesh address ${ip}:${m.mesh_port} belongs to live node_id ${e.id}`);
        this.drop(e, `its address now belongs to node_id ${m.id}`);
      }
      const index = this.pickIndex(m.id, m.index);
      if (!index) return this.refuse(s, "no_index", "no free node index");
      entry = { id: m.id, index, ip, api_port: m.api_port, mesh_port: m.mesh_port, clients: 0, lastBeat: now, registeredAt: Date.now(), draining: false, session: null };
      this.nodes.set(m.id, entry);
      this.indexes.set(index, m.id);
      this.reserved.delete(index);
    }
    entry.session = s;
    entry.lastBeat = now;
    if (m.draining === true) entry.draining = true;
    s.data.node = entry;
    s.label = `node_id ${m.id}`;
    this.unregistered.delete(s);
    if (!this.settled) {
      for (const peer of m.peers as unknown[]) {
        if (!Array.isArray(peer)) continue; // malformed: ignored, the registration goes on
        const [id, index] = peer;
        if (validNodeId(id) && validIndex(index) && !this.indexes.has(index) && !this.reserved.has(index)) this.reserved.set(index, id);
      }
    }
    log.info(`register node ${ip} node_id ${m.id}`);
    this.send(s, { t: "registered", index: entry.index, ip, listed, ...this.timings });
    this.broadcast();
  }

  /** The index the node had if it is free, else the next free one after the cursor; 0 when all are taken. */
  private pickIndex(id: string, wanted: number): number {
    const free = (i: number) => !this.indexes.has(i) && (this.reserved.get(i) ?? id) === id;
    if (validIndex(wanted)) {
      if (free(wanted)) return wanted;
      const holder = this.indexes.get(wanted) ?? this.reserved.get(wanted);
      log.warn(`node_id ${id} asked for its previous index ${wanted}, which node_id ${holder} holds; it gets a new one`);
    }
    for (let n = 0; n < MAX_NODE; n++) {
      const i = this.cursor;
      this.cursor = (i % MAX_NODE) + 1;
      if (free(i)) return i;
    }
    return 0;
  }

  private send(s: S, msg: CenterMsg): void {
    if (!sendMsg(s.out!, msg)) this.refuse(s, "not_reading", "engine does not read");
  }

  /** Sends the node list to every engine; `gone`: the node whose certain end (not a silence) changed it. */
  private broadcast(gone?: string): void {
    const nodes: NodeInfo[] = [];
    for (const e of this.nodes.values()) nodes.push({ id: e.id, index: e.index, ip: e.ip, api_port: e.api_port, mesh_port: e.mesh_port });
    const msg: CenterMsg = { t: "nodes", complete: this.settled, nodes, ...(gone ? { gone } : {}) };
    for (const e of this.nodes.values()) if (e.session) this.send(e.session, msg);
  }

  private sweep(): void {
    const now = performance.now();
    const drop = this.timings.drop;
    for (const e of this.nodes.values()) {
      if (now - e.lastBeat > drop) this.drop(e, `no heartbeat for ${drop / 1000}s`, true);
    }
    for (const s of this.unregistered) {
      if (now - s.openedAt > drop) {
        this.unregistered.delete(s);
        this.refuse(s, "no_register", `no register within ${drop / 1000}s`);
      }
    }
    if (!this.settled && now - this.startedAt >= drop) {
      // Every node that was alive before a restart has re-registered by now: lists are complete from here on.
      this.settled = true;
      this.reserved.clear();
      this.broadcast();
    }
  }

  /** `silent`: dropped for want of heartbeats, so it may be alive (engines doubt it); else it is gone. */
  private drop(e: NodeEntry, why: string, silent = false): void {
    this.nodes.delete(e.id);
    this.indexes.delete(e.index);
    this.detach(e);
    log.info(`drop node ${e.ip} node_id ${e.id} (${why})`);
    this.broadcast(silent ? undefined : e.id);
  }

  /** Ends the node's registry connection without it counting as the node's own close. */
  private detach(e: NodeEntry): void {
    const s = e.session;
    e.session = null;
    if (!s) return;
    s.data.node = null;
    s.end();
  }

  private refuse(s: S, why: keyof RegistryServer["refused"], reason: string): void {
    this.refused[why]++;
    log.warn(`registry: ${s.label}: ${reason}`);
    sendMsg(s.out!, { t: "error", m: reason });
    s.end();
  }

  private closed(s: S): void {
    this.unregistered.delete(s);
    const e = s.data?.node;
    if (e && e.session === s) {
      e.session = null; // the node stays listed until its heartbeats are overdue
      log.debug(`registry: connection of node_id ${e.id} closed`);
    }
  }

  /** The node table, for a successor center (src/handover). */
  snapshot(): NodeState[] {
    return [...this.nodes.values()].map((e) => ({
      id: e.id, index: e.index, ip: e.ip, api_port: e.api_port, mesh_port: e.mesh_port, clients: e.clients, registeredAt: e.registeredAt, draining: e.draining,
    }));
  }

  /**
   * Takes over a predecessor's node table before listening: its engines reconnect and find their entry
   * and index here, and the lists are complete at once. An index already taken here (a node that
   * registered first) stays with that node; the adopted one gets a new index when it re-registers.
   */
  adopt(nodes: NodeState[]): void {
    const now = performance.now();
    for (const n of nodes) {
      if (this.nodes.has(n.id) || this.indexes.has(n.index)) continue;
      this.nodes.set(n.id, { ...n, lastBeat: now, session: null });
      this.indexes.set(n.index, n.id);
    }
    this.settled = true;
    this.reserved.clear();
  }

  /** Stops accepting and ends every registry connection; engines reconnect to whoever listens now. */
  stop(): void {
    clearInterval(this.sweeper);
    this.listener.stop();
  }
}
