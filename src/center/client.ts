// The engine's side of the registry protocol: connect to the center, register, heartbeat, follow the node
// list. Never gives up: a center that is not up yet, or restarts, is retried with backoff (each failure
// logged), and the engine registers again with the same node id (and asks for the same index).
import type { Socket } from "bun";
import { log } from "../log/logger";
import { FrameReader, Outbox } from "../mesh/frames";
import {
  MAX_UNSENT, REGISTRY_VERSION, TIMINGS, readMsg, sendMsg, splitAddr,
  type CenterMsg, type NodeInfo, type RegisterMsg, type Timings,
} from "./protocol";

export interface RegistryHandlers {
  /** What to register with; asked on every (re)connection. */
  registration(): Omit<RegisterMsg, "t" | "v">;
  /**
   * After each registration, with the index the center assigned; `listed` false when the center had
   * forgotten this node (the other engines stopped counting it), and the center's membership timings.
   */
  registered(index: number, listed: boolean, timings: Timings): void;
  /** The node list; `gone` names a node removed for certain (it left), not for silence. */
  nodes(list: NodeInfo[], complete: boolean, gone: string | undefined): void;
  /** The center showed it lists this node (a registration, or any message after it). */
  confirmed(): void;
  /** Client connections, reported in heartbeats. */
  clients(): number;
}

const RETRY_MIN_MS = 250;
/** At most this long between attempts, and at most half the drop timeout: a restarted center keeps its first
 * drop timeout for the engines it knew to come back, and one that came back later is treated as dropped. */
const RETRY_MAX_MS = 2500;

export class RegistryClient {
  private readonly host: string;
  private readonly port: number;
  private socket: Socket<undefined> | null = null;
  private out: Outbox | null = null;
  private attempt = 0;
  private registered = false;
  private stopped = false;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: Timer | undefined;
  private beat: Timer | undefined;
  private connectTimer: Timer | undefined;
  private lastHeard = 0;
  private timings: Timings = { ...TIMINGS };

  constructor(private readonly addr: string, private readonly h: RegistryHandlers) {
    const hp = splitAddr(addr);
    if (!hp) throw new Error(`engine.centerRegistry: ${JSON.stringify(addr)} is not host:port`);
    [this.host, this.port] = hp;
  }

  start(): void {
    this.connect();
  }

  private connect(): void {
    const attempt = ++this.attempt;
    const reader = new FrameReader((f) => this.onFrame(attempt, f), MAX_UNSENT);
    // A center host that is down drops SYNs: the kernel would keep retrying for minutes, past the backoff.
    const drop = this.timings.drop;
    this.connectTimer = setTimeout(() => this.lost(attempt, `connect timed out after ${drop / 1000}s`), drop);
    Bun.connect({
      hostname: this.host,
      port: this.port,
      socket: {
        open: (s) => {
          if (attempt !== this.attempt || this.stopped) return void s.end();
          clearTimeout(this.connectTimer);
          this.socket = s;
          this.out = new Outbox(s, MAX_UNSENT);
          this.lastHeard = performance.now();
          log.info(`center registry ${this.addr} connect successful`);
          // Checks for an answer from here on: a center that accepts but never answers the register is retried.
          clearInterval(this.beat);
          this.beat = setInterval(() => this.heartbeat(attempt), this.timings.hb);
          sendMsg(this.out, { t: "register", v: REGISTRY_VERSION, ...this.h.registration() });
        },
        data: (_s, chunk) => {
          if (attempt !== this.attempt) return;
          this.lastHeard = performance.now();
          const err = reader.push(chunk);
          if (err) this.lost(attempt, err);
        },
        drain: () => {
          if (attempt === this.attempt) this.out?.drain();
        },
        close: () => this.lost(attempt, "connection closed"),
        error: (_s, e) => this.lost(attempt, e.message),
      },
    }).catch((e: Error & { code?: string }) => this.lost(attempt, e.code ?? e.message));
  }

  private onFrame(attempt: number, f: Uint8Array): void {
    if (attempt !== this.attempt) return;
    const msg = readMsg<CenterMsg>(f);
    if (!msg) return this.lost(attempt, "malformed message from the center");
    if (this.registered) this.h.confirmed();
    switch (msg.t) {
      case "registered":
        this.registered = true;
        this.retryMs = RETRY_MIN_MS;
        this.timings = timingsOf(msg, this.timings);
        log.info(`register engine node_id ${this.h.registration().id}`);
        this.h.registered(msg.index, msg.listed !== false, this.timings);
        this.h.confirmed();
        clearInterval(this.beat);
        this.beat = setInterval(() => this.heartbeat(attempt), this.timings.hb);
        break;
      case "nodes":
        if (this.registered) this.h.nodes(msg.nodes, msg.complete, typeof msg.gone === "string" ? msg.gone : undefined);
        break;
      case "error":
        return this.lost(attempt, `refused: ${msg.m}`);
    }
  }

  private heartbeat(attempt: number): void {
    const drop = this.timings.drop;
    if (performance.now() - this.lastHeard > drop) return this.lost(attempt, `no answer for ${drop / 1000}s`);
    if (!this.registered) return;
    if (this.out && !sendMsg(this.out, { t: "hb", clients: this.h.clients() })) this.lost(attempt, "center does not read");
  }

  /** The attempt failed or the connection dropped: try again after a backoff. */
  private lost(attempt: number, reason: string): void {
    if (attempt !== this.attempt) return;
    this.attempt++;
    clearInterval(this.beat);
    clearTimeout(this.connectTimer);
    this.socket?.end();
    this.socket = null;
    this.out?.detach();
    this.out = null;
    if (this.stopped) return;
    const wasRegistered = this.registered;
    this.registered = false;
    const delay = wasRegistered ? RETRY_MIN_MS : this.retryMs;
    if (wasRegistered) log.warn(`center registry ${this.addr} connection lost (${reason}), reconnecting`);
    else log.warn(`center registry ${this.addr} connect failed (${reason}), retry in ${delay / 1000}s`);
    if (!wasRegistered) this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS, Math.max(RETRY_MIN_MS, this.timings.drop / 2));
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Tells the center this engine drains (registration() says so too from now on, for re-registrations). */
  drain(): void {
    if (this.out && this.registered) sendMsg(this.out, { t: "drain" });
  }

  /** Stops for good; a registered engine tells the center it leaves, so peers forget it at once. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.out && this.registered) {
      sendMsg(this.out, { t: "leave" });
      this.out.flush();
    }
    this.lost(this.attempt, "stopped");
  }
}

/** The center's timings where it sent sane ones (an older center sends none), else the ones in force. */
function timingsOf(msg: Partial<Timings>, current: Timings): Timings {
  const ok = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;
  const t = { hb: ok(msg.hb) && msg.hb >= 10 ? msg.hb : current.hb, drop: ok(msg.drop) ? msg.drop : current.drop, doubt: ok(msg.doubt) ? msg.doubt : current.doubt };
  // A heartbeat as slow as the drop timeout would be dropped by the very center that asked for it.
  if (t.drop < 2 * t.hb) t.drop = 2 * t.hb;
  return t;
}
