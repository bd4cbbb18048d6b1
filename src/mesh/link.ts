// The dialing side of a mesh link: this node connects to one peer's mesh point, says hello, and sends its
// requests there; replies come back on the same link. A link that drops is redialed with backoff for as
// long as the center lists the peer; meanwhile requests to it fail at once ("unreachable").
import type { Socket } from "bun";
import { log } from "../log/logger";
import { FrameReader, Outbox } from "./frames";
import {
  LINK_SILENT_MS, MAX_UNSENT, MESH_VERSION, PING_MS, REQUEST_MS, T, readShortText, readU32, textOf, writeEmpty, writeHello,
} from "./protocol";

export interface PeerInfo {
  id: string;
  index: number;
  ip: string;
  meshPort: number;
}

/** Reply callback: an error text (unreachable, timed out, or the peer's own error), or the counts of a publish. */
export type Done = (err: string | null, ok: number, fail: number) => void;

interface Pending {
  deadline: number;
  done: Done;
}

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 2000;
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
  out: Outbox = new Outbox(null, MAX_UNSENT);
  private socket: Socket<undefined> | null = null;
  private attempt = 0; // generation of the current connection attempt
  private closed = false;
  private readonly pending = new Map<number, Pending>();
  private lastHeard = 0;
  private lastPing = 0;
  /** When the pending connect began; 0 when none is pending. */
  private connectingSince = 0;
  private retryMs = RETRY_MIN_MS;
  private retryTimer: Timer | undefined;
  private warned = false;
  /** Dials in a row answered by another node id; the next one goes at once while below QUICK_REDIALS. */
  private wrongNode = 0;
  readonly addr: string;

  /**
   * `label` names an engine's internal link (between a primary and one of its workers) in the log, where its
   * ups and downs are debug lines: the worker supervisor reports what matters about them.
   */
  constructor(readonly peer: PeerInfo, private readonly self: { id: string; index: number }, private readonly label?: string) {
    this.addr = `${peer.ip.includes(":") ? `[${peer.ip}]` : peer.ip}:${peer.meshPort}`;
    this.connect();
  }

  /** Null when a request can be written to `out` now, else why not. */
  ready(): string | null {
    if (!this.up) return `node ${this.peer.id} unreachable`;
    if (this.out.full) return `node ${this.peer.id} congested (${MAX_UNSENT >> 20} MiB unsent)`;
    return null;
  }

  /** Waits for the reply to request `req`, which the caller just wrote to `out`. */
  track(req: number, done: Done): void {
    this.pending.set(req, { deadline: performance.now() + REQUEST_MS, done });
    this.out.schedule();
  }

  private connect(): void {
    const attempt = ++this.attempt;
    this.connectingSince = performance.now();
    // Frames still in a chunk after the attempt ended (a BYE, say) are ignored.
    const reader = new FrameReader((f) => attempt === this.attempt && this.onFrame(f));
    Bun.connect({
      hostname: this.peer.ip,
      port: this.peer.meshPort,
      socket: {
        open: (s) => {
          if (attempt !== this.attempt || this.closed) return void s.end();
          s.setNoDelay(true);
          this.connectingSince = 0;
          this.socket = s;
          this.out = new Outbox(s, MAX_UNSENT);
          this.lastHeard = performance.now();
          writeHello(this.out, T.HELLO, this.self.id, this.self.index);
          this.out.schedule();
        },
        data: (s, chunk) => {
          if (attempt !== this.attempt) return;
          this.lastHeard = performance.now();
          const err = reader.push(chunk);
          if (err) this.lost(attempt, err);
        },
        drain: () => {
          if (attempt === this.attempt) this.out.drain();
        },
        close: () => this.lost(attempt, "connection closed"),
        error: (_s, e) => this.lost(attempt, e.message),
      },
    }).catch((e: Error & { code?: string }) => {
      if (attempt === this.attempt && e.code === "ECONNREFUSED") this.gone = true;
      this.lost(attempt, e.code ?? e.message);
    });
  }

  private onFrame(f: Uint8Array): void {
    if (f.length < 5) return this.lost(this.attempt, "short frame");
    const type = f[0]!;
    if (type === T.RESULT || type === T.COUNTS) {
      const req = readU32(f, 1);
      const p = this.pending.get(req);
      if (!p) return; // answered after its timeout
      this.pending.delete(req);
      if (type === T.RESULT) p.done(f.length > 5 ? textOf(f.subarray(5)) : null, 0, 0);
      else p.done(null, readU32(f, 5), readU32(f, 9));
    } else if (type === T.WELCOME) {
      const id = f.length > 6 ? readShortText(f, 6) : null;
      if (f[5] !== MESH_VERSION || !id) return this.lost(this.attempt, `unexpected hello (version ${f[5]})`);
      if (id[0] !== this.peer.id) {
        this.wrongNode++;
        return this.lost(this.attempt, `${this.addr} is node ${id[0]} now`);
      }
      this.wrongNode = 0;
      this.up = true;
      this.gone = false;
      this.warned = false;
      this.retryMs = RETRY_MIN_MS;
      if (this.label) log.debug(`mesh link to ${this.label} (${this.addr}) up`);
      else log.info(`mesh link to node_id ${this.peer.id} (${this.addr}) up`);
    } else if (type === T.BYE) {
      this.lost(this.attempt, `refused: ${textOf(f.subarray(5))}`);
    }
  }

  /** The current attempt failed or the link dropped: fail what waits on it and redial later. */
  private lost(attempt: number, reason: string): void {
    if (attempt !== this.attempt) return;
    this.attempt++;
    const wasUp = this.up;
    this.up = false;
    this.connectingSince = 0;
    this.socket?.end();
    this.socket = null;
    this.out.detach();
    this.failAll(`node ${this.peer.id} unreachable (${reason})`);
    if (this.closed) return;
    if (this.wrongNode > 0 && this.wrongNode <= QUICK_REDIALS) {
      log.debug(`mesh link to node_id ${this.peer.id} (${this.addr}): ${reason}, dialing again`);
      this.retryTimer = setTimeout(() => this.connect(), 0);
      return;
    }
    const retry = `retry in ${this.retryMs / 1000}s`;
    const name = this.label ?? `node_id ${this.peer.id}`;
    if ((wasUp || !this.warned) && !this.label) log.warn(`mesh link to ${name} (${this.addr}) down: ${reason}, ${retry}`);
    else log.debug(`mesh link to ${name} (${this.addr}): ${reason}, ${retry}`);
    this.warned = true;
    this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /** Called every few hundred ms: pings, notices a silent peer, fails requests past their deadline. */
  tick(now: number): void {
    if (this.socket && now - this.lastHeard > LINK_SILENT_MS) {
      this.lost(this.attempt, `no answer for ${LINK_SILENT_MS / 1000}s`);
    } else if (this.connectingSince && now - this.connectingSince > LINK_SILENT_MS) {
      // SYNs dropped (a host down, a firewall): the kernel's retries space out to minutes, past the backoff.
      this.lost(this.attempt, `connect timed out after ${LINK_SILENT_MS / 1000}s`);
    } else if (this.up && now - this.lastPing >= PING_MS) {
      this.lastPing = now;
      writeEmpty(this.out, T.PING);
      this.out.schedule();
    }
    // Deadlines grow with insertion order, so the expired requests are at the front.
    for (const [req, p] of this.pending) {
      if (p.deadline > now) break;
      this.pending.delete(req);
      p.done(`node ${this.peer.id} timed out after ${REQUEST_MS / 1000}s`, 0, 0);
    }
  }

  private failAll(err: string): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.done(err, 0, 0);
  }

  /** The peer left the mesh: stop redialing and fail what still waits. */
  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.lost(this.attempt, "left the mesh");
    this.failAll(`node ${this.peer.id} left the mesh`);
  }
}
