// The dialing side of every cluster link (engine → center registry, engine → engine mesh, primary ↔ worker):
// connect with a deadline, (TLS,) authenticate both ends, then carry the protocol's frames; a link that
// fails or drops is redialed with backoff until it is closed. The protocol on top (src/center/client.ts,
// src/mesh/link.ts) says hello in `up`, reads `frame`, and calls `lost` on a protocol error.
import type { Socket } from "bun";
import { FrameReader, Outbox } from "./frames";
import { checkAccept, respond, type Keys, type LinkKind } from "./auth";
import { PRE_AUTH_FRAME, writeRaw } from "./listener";
import { verifyPeer, type TlsMaterial } from "./tls";

export interface LinkTimings {
  /** A dial (TCP, TLS) not done within this long fails: SYNs dropped by a host that is down wait minutes. */
  connectMs: number;
  /** Nothing received for this long (the handshake included) gives the link up. */
  silentMs: number;
  /** Redial backoff: starts here, doubles per failure, reset by `ok()`. */
  retryMinMs: number;
  retryMaxMs: number;
  /** How often `tick` runs (pings, heartbeats, request deadlines). */
  tickMs: number;
}

export interface LinkOptions {
  host: string;
  port: number;
  kind: LinkKind;
  keys: Keys;
  tls: TlsMaterial | null;
  /** Largest frame taken once authenticated; unsent bytes past `maxUnsent` make `out.full`. */
  maxFrame: number;
  maxUnsent: number;
  timings: LinkTimings;
}

export interface LinkEvents {
  /** Authenticated both ways: the protocol's hello goes to `out`. */
  up(out: Outbox): void;
  frame(f: Uint8Array): void;
  /** The attempt failed or the link dropped; `wasUp`: it had authenticated. `retryMs` is null once closed. */
  down(reason: string, wasUp: boolean, retryMs: number | null): void;
  /** Every `tickMs`, with performance.now(). */
  tick?(now: number): void;
}

export class Link {
  /** Where protocol frames go; replaced per connection (a detached one while down). */
  out = new Outbox(null, 0);
  /** True once both ends authenticated. */
  authed = false;
  lastHeard = 0;
  readonly addr: string;
  private socket: Socket<undefined> | null = null;
  private attempt = 0;
  private closed = false;
  private retryMs: number;
  private retryTimer: Timer | undefined;
  private connectTimer: Timer | undefined;
  private readonly ticker: Timer;
  private nonces: [Uint8Array, Uint8Array] | null = null;
  private reader: FrameReader | null = null;
  /** A TLS connection whose handshake is not done yet. */
  private handshaking: Socket<undefined> | null = null;

  constructor(private readonly o: LinkOptions, private readonly ev: LinkEvents) {
    this.addr = `${o.host.includes(":") ? `[${o.host}]` : o.host}:${o.port}`;
    this.retryMs = o.timings.retryMinMs;
    this.ticker = setInterval(() => this.tick(), o.timings.tickMs);
    this.connect();
  }

  /** The protocol's hello was answered: the next failure redials after the shortest backoff. */
  ok(): void {
    this.retryMs = this.o.timings.retryMinMs;
  }

  private connect(): void {
    const attempt = ++this.attempt;
    const t = this.o.timings;
    // Bytes in a chunk after the attempt ended (a refusal, say) are ignored.
    const reader = new FrameReader((f) => attempt === this.attempt && this.onFrame(f), PRE_AUTH_FRAME);
    this.reader = reader;
    this.connectTimer = setTimeout(() => this.lost(attempt, `connect timed out after ${t.connectMs / 1000}s`), t.connectMs);
    const opened = (s: Socket<undefined>) => {
      if (this.handshaking === s) this.handshaking = null;
      if (attempt !== this.attempt || this.closed) return void s.end();
      clearTimeout(this.connectTimer);
      this.socket = s;
      this.lastHeard = performance.now();
    };
    // A host Bun cannot even try (checked by the center, but a link never throws into its owner) fails the attempt.
    try {
      this.dial(attempt, reader, opened);
    } catch (e) {
      queueMicrotask(() => this.lost(attempt, (e as Error).message));
    }
  }

  private dial(attempt: number, reader: FrameReader, opened: (s: Socket<undefined>) => void): void {
    const tls = this.o.tls;
    Bun.connect({
      hostname: this.o.host,
      port: this.o.port,
      tls: tls ? tls.options() : undefined,
      socket: {
        open: (s) => {
          s.setNoDelay(true);
          if (!tls) return opened(s);
          // Until the TLS handshake is done the socket is only ours to close (a deadline, a refusal).
          if (attempt === this.attempt) this.handshaking = s;
        },
        handshake: (s, _ok, err) => {
          const bad = verifyPeer(s, err);
          if (bad) return this.lost(attempt, bad);
          opened(s);
        },
        data: (_s, chunk) => {
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
    }).catch((e: Error & { code?: string }) => this.lost(attempt, e.code ?? e.message));
  }

  private onFrame(f: Uint8Array): void {
    if (this.authed) return this.ev.frame(f);
    const s = this.socket!;
    if (!this.nonces) {
      const r = respond(f, this.o.kind, this.o.keys);
      if (typeof r === "string") return this.lost(this.attempt, r);
      this.nonces = [r[1], r[2]];
      writeRaw(s, r[0]);
      return;
    }
    const bad = checkAccept(f, this.o.kind, this.o.keys, ...this.nonces);
    if (bad) return this.lost(this.attempt, bad);
    this.nonces = null;
    this.authed = true;
    this.reader!.limit(this.o.maxFrame);
    this.out = new Outbox(s, this.o.maxUnsent);
    this.ev.up(this.out);
  }

  /**
   * Gives the current connection up (a protocol error, a refusal) and redials after the backoff, or at once
   * with `now` (the protocol knows the next dial likely reaches someone else).
   */
  lost(attempt: number | null, reason: string, now = false): void {
    if (attempt !== null && attempt !== this.attempt) return;
    this.attempt++;
    const wasUp = this.authed;
    this.authed = false;
    this.nonces = null;
    clearTimeout(this.connectTimer);
    this.socket?.end();
    this.socket = null;
    this.handshaking?.end();
    this.handshaking = null;
    this.out.detach();
    if (this.closed) return this.ev.down(reason, wasUp, null);
    const delay = now ? 0 : this.retryMs;
    if (!now) this.retryMs = Math.min(this.retryMs * 2, this.o.timings.retryMaxMs);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.ev.down(reason, wasUp, delay);
  }

  private tick(): void {
    const now = performance.now();
    if (this.socket && now - this.lastHeard > this.o.timings.silentMs) {
      this.lost(null, `no answer for ${this.o.timings.silentMs / 1000}s`);
    }
    this.ev.tick?.(now);
  }

  /** Stops for good: no redial. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.ticker);
    this.lost(null, reason);
  }
}
