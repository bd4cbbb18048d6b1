// The listening side of every cluster link (the center's registry, an engine's mesh point, the worker links
// of a multi-core engine). Until a peer has authenticated (src/net/auth.ts) it costs little and cannot stay:
// frames of at most PRE_AUTH_FRAME bytes, `handshakeMs` to finish, at most `maxUnauthenticated` such
// connections at once. With no cluster.secret (protected mode) only loopback peers are taken.
import type { Socket, TCPSocketListener } from "bun";
import { log } from "../log/logger";
import { FrameReader, Outbox } from "./frames";
import { accept, challenge, checkResponse, deny, nonce, type Keys, type LinkKind } from "./auth";
import { verifyPeer, type TlsMaterial } from "./tls";
import { RefusalLog, type RefusalReason } from "./refusals";
import { isLoopback } from "./addr";
import { shared } from "../handover/ports";

/** How long a refused connection may take to close its side before it is cut off. */
const REFUSED_LINGER_MS = 1000;

/** Largest frame either side takes before the peer authenticated (the handshake's are under 100 bytes). */
export const PRE_AUTH_FRAME = 1024;

export interface ListenerTimings {
  /** A peer that has not authenticated this long after connecting is closed. */
  handshakeMs: number;
  /** An authenticated link that sent nothing for this long is closed; 0: never (the protocol decides). */
  idleMs: number;
  /** How often the deadlines above are checked. */
  sweepMs: number;
}

export interface ListenerOptions {
  /** Names the port in log lines: "mesh point", "registry". */
  name: string;
  kind: LinkKind;
  keys: Keys;
  tls: TlsMaterial | null;
  maxFrame: number;
  maxUnsent: number;
  maxUnauthenticated: number;
  timings: ListenerTimings;
}

export interface ListenerEvents<S> {
  /** A peer authenticated: the protocol's state for it. */
  open(c: Conn<S>): S;
  frame(c: Conn<S>, f: Uint8Array): void;
  /** An authenticated link broke the framing: the protocol tells the peer why, logs it and ends the link. */
  refuse(c: Conn<S>, reason: string): void;
  close?(c: Conn<S>): void;
}

/** Writes one small frame straight to the socket (handshake frames, before there is an Outbox). */
export function writeRaw(s: Socket<any>, payload: Uint8Array): void {
  const f = new Uint8Array(4 + payload.length);
  new DataView(f.buffer).setUint32(0, payload.length);
  f.set(payload, 4);
  s.write(f);
}

/** One peer's connection. `data` is the protocol's state, set once the peer authenticated. */
export class Conn<S> {
  data!: S;
  out: Outbox | null = null;
  lastHeard = performance.now();
  readonly openedAt = this.lastHeard;
  /** How log lines name the peer; the protocol may replace it (a node id) once it knows. */
  label: string;
  readonly reader: FrameReader;
  ln: Uint8Array | null = null;

  constructor(readonly socket: Socket<Conn<S>>, onFrame: (c: Conn<S>, f: Uint8Array) => void) {
    this.label = socket.remoteAddress;
    this.reader = new FrameReader((f) => onFrame(this, f), PRE_AUTH_FRAME);
  }

  get remote(): string {
    return this.socket.remoteAddress;
  }

  /** Writes what was queued, then closes; frames still arriving are ignored. */
  end(): void {
    this.reader.stop();
    this.out?.flush();
    this.socket.end();
  }
}

export class Listener<S> {
  private listener: TCPSocketListener<Conn<S>> | null = null;
  private readonly unauthed = new Set<Conn<S>>();
  private readonly authed = new Set<Conn<S>>();
  private readonly refusals: RefusalLog;
  private sweeper: Timer | undefined;
  private unfollowTls: (() => void) | null = null;
  private bind = "";

  constructor(private readonly o: ListenerOptions, private readonly ev: ListenerEvents<S>) {
    this.refusals = new RefusalLog(o.name, o.kind);
  }

  listen(bind: string, port: number): void {
    this.bind = bind;
    this.listener = this.open(port);
    this.sweeper = setInterval(() => this.sweep(), this.o.timings.sweepMs);
    // A renewed certificate: a new listener on the same port takes new links, the old one's links stay.
    this.unfollowTls = this.o.tls?.onReload(() => this.relisten()) ?? null;
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  /** Authenticated connections now. */
  get size(): number {
    return this.authed.size;
  }

  private open(port: number): TCPSocketListener<Conn<S>> {
    const tls = this.o.tls;
    // SO_REUSEPORT: a successor binds beside this process during a handover (src/handover/ports.ts), and a
    // renewed certificate's listener beside the old one.
    return Bun.listen<Conn<S>>({
      ...shared(this.bind, port),
      tls: tls ? tls.options() : undefined,
      socket: {
        open: (s) => {
          s.setNoDelay(true);
          const c = new Conn<S>(s, (c, f) => this.onFrame(c, f));
          s.data = c;
          if (this.o.keys.open && !isLoopback(s.remoteAddress)) {
            return this.refuse(c, "not_loopback", "not a loopback address, and no cluster.secret is set (protected mode)");
          }
          if (this.unauthed.size >= this.o.maxUnauthenticated) {
            return this.refuse(c, "too_many", `too many unauthenticated connections (${this.o.maxUnauthenticated})`);
          }
          this.unauthed.add(c);
          if (!tls) this.challenge(c);
        },
        handshake: (s, _ok, err) => {
          const bad = verifyPeer(s, err);
          if (bad) return this.refuse(s.data, "tls", bad);
          this.challenge(s.data);
        },
        data: (s, chunk) => {
          const c = s.data;
          c.lastHeard = performance.now();
          const err = c.reader.push(chunk);
          if (err) this.refuse(c, "bad_frame", c.out ? err : `${err} before authentication`);
        },
        drain: (s) => s.data.out?.drain(),
        close: (s) => this.closed(s.data),
        error: (s, e) => log.debug(`${this.o.name}: connection from ${s.remoteAddress} failed (${e.message})`),
      },
    });
  }

  private relisten(): void {
    const old = this.listener;
    if (!old) return;
    try {
      this.listener = this.open(old.port);
    } catch (e) {
      return void log.error(`${this.o.name}: cannot listen with the new certificate (${(e as Error).message}); the old one stays`);
    }
    old.stop(false); // stops accepting; the links it accepted stay open
  }

  private challenge(c: Conn<S>): void {
    c.ln = nonce();
    writeRaw(c.socket, challenge(this.o.kind, c.ln));
  }

  private onFrame(c: Conn<S>, f: Uint8Array): void {
    if (c.out) return this.ev.frame(c, f);
    if (!c.ln) return this.refuse(c, "early", "spoke before the TLS handshake ended");
    const dn = checkResponse(f, this.o.kind, this.o.keys, c.ln);
    if (!dn) return this.refuse(c, "auth_failed", "authentication failed (wrong or missing cluster.secret)");
    writeRaw(c.socket, accept(this.o.kind, this.o.keys, c.ln, dn));
    c.ln = null;
    c.reader.limit(this.o.maxFrame);
    c.out = new Outbox(c.socket, this.o.maxUnsent);
    this.unauthed.delete(c);
    this.authed.add(c);
    c.data = this.ev.open(c);
  }

  /** Closes a connection that did not authenticate, saying why to the peer and in this node's log. */
  private refuse(c: Conn<S>, why: RefusalReason, reason: string): void {
    if (c.out) return this.ev.refuse(c, reason);
    this.refusals.note(c.remote, why, reason);
    this.unauthed.delete(c);
    writeRaw(c.socket, deny(reason));
    c.end();
    // Nothing more is read from a peer that was refused (a TLS layer would decrypt it all), and one that
    // does not close its side in a second is cut off: a refusal costs nothing past that.
    c.socket.pause();
    setTimeout(() => c.socket.terminate(), REFUSED_LINGER_MS).unref();
  }

  private closed(c: Conn<S> | undefined): void {
    if (!c) return;
    this.unauthed.delete(c);
    if (!this.authed.delete(c)) return;
    c.out?.detach();
    this.ev.close?.(c);
  }

  private sweep(): void {
    const now = performance.now();
    const t = this.o.timings;
    for (const c of this.unauthed) {
      if (now - c.openedAt > t.handshakeMs) this.refuse(c, "timeout", `no authentication within ${t.handshakeMs / 1000}s`);
    }
    if (!t.idleMs) return;
    for (const c of this.authed) {
      if (now - c.lastHeard > t.idleMs) {
        log.warn(`${this.o.name}: link from ${c.label} silent for ${t.idleMs / 1000}s, closed`);
        c.end();
      }
    }
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.unfollowTls?.();
    for (const c of [...this.unauthed, ...this.authed]) c.socket.end();
    this.listener?.stop(true);
    this.listener = null;
  }
}
