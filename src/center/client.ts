// The engine's side of the registry protocol: connect to the center (src/net/link.ts: dial, authenticate,
// redial with backoff), register, heartbeat, follow the node list. Never gives up: a center that is not up
// yet, or restarts, is retried (each failure logged), and the engine registers again with the same node id
// (and asks for the same index).
import { log } from "../log/logger";
import { escapeText } from "../log/escape";
import type { Keys } from "../net/auth";
import { Link, type LinkTimings as NetTimings } from "../net/link";
import type { TlsMaterial } from "../net/tls";
import {
  MAX_UNSENT, REGISTRY_VERSION, TIMINGS, readMsg, sendMsg, splitAddr,
  type CenterMsg, type LinkTimings, type RegisterMsg, type Timings,
} from "./protocol";

export interface RegistryHandlers {
  /** What to register with; asked on every (re)connection. */
  registration(): Omit<RegisterMsg, "t" | "v">;
  /**
   * After each registration, with the index the center assigned; `listed` false when the center had
   * forgotten this node (the other engines stopped counting it), and the center's membership timings.
   */
  registered(index: number, listed: boolean, timings: Timings): void;
  /** The center's node list, unchecked (whoever dials an entry validates it); `gone` names a node removed for certain (it left), not for silence. */
  nodes(list: unknown[], complete: boolean, gone: string | undefined): void;
  /** The center showed it lists this node (a registration, or any message after it). */
  confirmed(): void;
  /** Client connections, reported in heartbeats. */
  clients(): number;
}

export interface RegistryClientOptions {
  keys: Keys;
  tls: TlsMaterial | null;
  link: LinkTimings;
  /** Membership timings until the center sends its own (this engine's center.registry settings). */
  timings?: Timings;
}

export class RegistryClient {
  private link: Link | null = null;
  private registered = false;
  private lastBeat = 0;
  private timings: Timings = { ...TIMINGS };
  /** The link's timings, kept in step with the center's drop timeout. */
  private readonly net: NetTimings;

  constructor(private readonly addr: string, private readonly h: RegistryHandlers, private readonly o: RegistryClientOptions) {
    if (!splitAddr(addr)) throw new Error(`engine.centerRegistry: ${JSON.stringify(addr)} is not host:port`);
    this.net = { connectMs: 0, silentMs: 0, retryMinMs: o.link.retryMinMs, retryMaxMs: 0, tickMs: o.link.sweepMs };
    this.follow({ ...(o.timings ?? TIMINGS) });
  }

  /**
   * The drop timeout bounds a dial and the center's silence; the backoff stays under half of it: a restarted
   * center keeps its first drop timeout for the engines it knew to come back, one that came later is dropped.
   */
  private follow(t: Timings): void {
    this.timings = t;
    this.net.connectMs = t.drop;
    this.net.silentMs = t.drop;
    this.net.retryMaxMs = Math.min(this.o.link.retryMaxMs, Math.max(this.o.link.retryMinMs, t.drop / 2));
  }

  start(): void {
    const [host, port] = splitAddr(this.addr)!;
    this.link = new Link(
      { host, port, kind: "registry", keys: this.o.keys, tls: this.o.tls, maxFrame: MAX_UNSENT, maxUnsent: MAX_UNSENT, timings: this.net },
      {
        up: (out) => {
          log.info(`center registry ${this.addr} connect successful`);
          sendMsg(out, { t: "register", v: REGISTRY_VERSION, ...this.h.registration() });
        },
        frame: (f) => this.onFrame(f),
        down: (reason, _wasUp, retryMs) => this.down(reason, retryMs),
        tick: (now) => this.heartbeat(now),
      },
    );
  }

  private onFrame(f: Uint8Array): void {
    const link = this.link!;
    const msg = readMsg<CenterMsg>(f);
    if (!msg) return link.lost(null, "malformed message from the center");
    if (this.registered) this.h.confirmed();
    switch (msg.t) {
      case "registered":
        this.registered = true;
        link.ok();
        this.follow(timingsOf(msg, this.timings));
        log.info(`register engine node_id ${this.h.registration().id}`);
        this.h.registered(msg.index, msg.listed !== false, this.timings);
        this.h.confirmed();
        break;
      case "nodes":
        if (this.registered && Array.isArray(msg.nodes)) {
          this.h.nodes(msg.nodes, msg.complete === true, typeof msg.gone === "string" ? msg.gone : undefined);
        }
        break;
      case "error":
        return link.lost(null, `refused: ${msg.m}`);
    }
  }

  private heartbeat(now: number): void {
    const link = this.link!;
    if (!this.registered || now - this.lastBeat < this.timings.hb) return;
    this.lastBeat = now;
    if (!sendMsg(link.out, { t: "hb", clients: this.h.clients() })) link.lost(null, "center does not read");
  }

  /** The attempt failed or the connection dropped; the link tries again after its backoff. */
  private down(reason: string, retryMs: number | null): void {
    const wasRegistered = this.registered;
    this.registered = false;
    if (retryMs === null) return; // stopped
    reason = escapeText(reason);
    if (wasRegistered) log.warn(`center registry ${this.addr} connection lost (${reason}), reconnecting`);
    else log.warn(`center registry ${this.addr} connect failed (${reason}), retry in ${retryMs / 1000}s`);
  }

  /** Tells the center this engine drains (registration() says so too from now on, for re-registrations). */
  drain(): void {
    if (this.link && this.registered) sendMsg(this.link.out, { t: "drain" });
  }

  /** Stops for good; a registered engine tells the center it leaves, so peers forget it at once. */
  stop(): void {
    const link = this.link;
    if (!link) return;
    if (this.registered) {
      sendMsg(link.out, { t: "leave" });
      link.out.flush();
    }
    link.close("stopped");
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
