// The dialing side of a mesh link: this node connects to one peer's mesh point (src/net/link.ts: dial,
// authenticate, redial with backoff for as long as the center lists the peer), says hello, and sends its
// requests there; replies come back on the same link. While it is down requests fail at once ("unreachable").
import { log } from "../log/logger";
import { escapeText } from "../log/escape";
import { MAX_FRAME, type Outbox } from "../net/frames";
import { Link } from "../net/link";
import type { Keys, LinkKind } from "../net/auth";
import { Pending } from "../net/pending";
import type { TlsMaterial } from "../net/tls";
import { MAX_UNSENT, MESH_VERSION, T, readShortText, readU32, textOf, writeEmpty, writeHello, type MeshTimings } from "./protocol";

export interface PeerInfo {
  id: string;
  index: number;
  ip: string;
  meshPort: number;
}

/** Reply callback: an error text (unreachable, timed out, or the peer's own error), or the counts of a publish. */
export type Done = (err: string | null, ok: number, fail: number) => void;

/** How links authenticate and how long they wait: the cluster's for the mesh, the engine's own for worker links. */
export interface LinkSecurity {
  kind: LinkKind;
  keys: Keys;
  tls: TlsMaterial | null;
  timings: MeshTimings;
}

/**
 * Dials answered by another node in a row that are retried at once. While an engine hands over to its
 * successor (src/handover) both listen on the mesh port and the kernel picks one per connection (by a hash
 * that includes the dialer's port), so the next dial most likely reaches the other one.
 */
const QUICK_REDIALS = 16;

export class PeerLink {
  /** True once the peer answered the hello; requests are only written then. */
  up = false;
  /** True when the last dial was refused: the peer's process is gone (and its clients with it). */
  gone = false;
  private readonly link: Link;
  private readonly pending: Pending<Done>;
  private lastPing = 0;
  private warned = false;
  /** Dials in a row answered by another node id; the next one goes at once while below QUICK_REDIALS. */
  private wrongNode = 0;
  /** Requests over this link that got no answer from the peer: not sent (see fail), timed out or cut by the link going down. */
  failed = 0;

  /**
   * `label` names an engine's internal link (between a primary and one of its workers) in the log, where its
   * ups and downs are debug lines: the worker supervisor reports what matters about them.
   */
  constructor(readonly peer: PeerInfo, self: { id: string; index: number }, private readonly sec: LinkSecurity, private readonly label?: string) {
    const t = sec.timings;
    this.pending = new Pending(t.requestMs, (done, err) => {
      this.failed++;
      done(err, 0, 0);
    });
    this.link = new Link(
      {
        host: peer.ip,
        port: peer.meshPort,
        kind: sec.kind,
        keys: sec.keys,
        tls: sec.tls,
        maxFrame: MAX_FRAME,
        maxUnsent: MAX_UNSENT,
        timings: { connectMs: t.silentMs, silentMs: t.silentMs, retryMinMs: t.retryMinMs, retryMaxMs: t.retryMaxMs, tickMs: t.tickMs },
      },
      {
        up: (out) => {
          writeHello(out, T.HELLO, self.id, self.index);
          out.schedule();
        },
        frame: (f) => this.onFrame(f),
        down: (reason, _wasUp, retryMs) => this.down(reason, retryMs),
        tick: (now) => this.tick(now),
      },
    );
  }

  get out(): Outbox {
    return this.link.out;
  }

  get addr(): string {
    return this.link.addr;
  }

  /** Null when a request can be written to `out` now, else why not. */
  ready(): string | null {
    if (!this.up) return `node ${this.peer.id} unreachable`;
    if (this.link.out.full) return `node ${this.peer.id} congested (${MAX_UNSENT >> 20} MiB unsent)`;
    return null;
  }

  /** A request that cannot be sent (not ready, too large): counted as failed; returns `err`. */
  fail(err: string): string {
    this.failed++;
    return err;
  }

  /** Waits for the reply to request `req`, which the caller just wrote to `out`. */
  track(req: number, done: Done): void {
    this.pending.track(req, done);
    this.link.out.schedule();
  }

  private onFrame(f: Uint8Array): void {
    if (f.length < 5) return this.link.lost(null, "short frame");
    const type = f[0]!;
    if (type === T.RESULT || type === T.COUNTS) {
      const p = this.pending.take(readU32(f, 1));
      if (!p) return; // answered after its timeout
      if (type === T.RESULT) p(f.length > 5 ? textOf(f.subarray(5)) : null, 0, 0);
      else p(null, readU32(f, 5), readU32(f, 9));
    } else if (type === T.WELCOME) {
      const id = f.length > 6 ? readShortText(f, 6) : null;
      if (f[5] !== MESH_VERSION || !id) return this.link.lost(null, `unexpected hello (version ${f[5]})`);
      if (id[0] !== this.peer.id) {
        this.wrongNode++;
        return this.link.lost(null, `${this.addr} is node ${escapeText(id[0])} now`, this.wrongNode <= QUICK_REDIALS);
      }
      this.wrongNode = 0;
      this.up = true;
      this.gone = false;
      this.warned = false;
      this.link.ok();
      if (this.label) log.debug(`mesh link to ${this.label} (${this.addr}) up`);
      else log.info(`mesh link to node_id ${this.peer.id} (${this.addr}) up`);
    } else if (type === T.BYE) {
      this.link.lost(null, `refused: ${textOf(f.subarray(5))}`);
    }
  }

  /** The current attempt failed or the link dropped: fail what waits on it; the link redials. */
  private down(reason: string, retryMs: number | null): void {
    const wasUp = this.up;
    this.up = false;
    // A failed dial's reason is the error's code: refused means nothing listens there any more.
    if (reason === "ECONNREFUSED") this.gone = true;
    reason = escapeText(reason);
    this.pending.failAll(`node ${this.peer.id} unreachable (${reason})`);
    if (retryMs === null) return; // closed
    if (retryMs === 0) return void log.debug(`mesh link to node_id ${this.peer.id} (${this.addr}): ${reason}, dialing again`);
    const retry = `retry in ${retryMs / 1000}s`;
    const name = this.label ?? `node_id ${this.peer.id}`;
    if ((wasUp || !this.warned) && !this.label) log.warn(`mesh link to ${name} (${this.addr}) down: ${reason}, ${retry}`);
    else log.debug(`mesh link to ${name} (${this.addr}): ${reason}, ${retry}`);
    this.warned = true;
  }

  /** Pings, and fails requests past their deadline. */
  private tick(now: number): void {
    const t = this.sec.timings;
    if (this.up && now - this.lastPing >= t.pingMs) {
      this.lastPing = now;
      writeEmpty(this.link.out, T.PING);
      this.link.out.schedule();
    }
    this.pending.expire(now, `node ${this.peer.id} timed out after ${t.requestMs / 1000}s`);
  }

  /** The peer left the mesh: stop redialing and fail what still waits. */
  close(): void {
    this.link.close("left the mesh");
    this.pending.failAll(`node ${this.peer.id} left the mesh`);
  }
}
