// `socket` servers: raw TCP through Bun.listen. The entry script frames the byte stream itself
// (protocol_input/protocol_decode, see engine/mix/socket.lua); pushed data goes through protocol_encode.
import type { Socket, SocketHandler, TCPSocketListener, TCPSocketListenOptions } from "bun";
import { log } from "../log/logger";
import { socketEvents } from "./mix/connection";
import { TcpConnection } from "./connection";
import type { SendType } from "./host";
import { LuaServer, type LuaServerOptions } from "./lua-server";
import { MAX_MESSAGE_BYTES, MAX_PENDING_BYTES, TLS_HANDSHAKE_SECONDS } from "./limits";
import { HeldWrites } from "./held-writes";
import { STEER_MS, steerToSuccessor } from "../handover/steer";
import { Listeners } from "../net/listeners";

type TCP = Socket<TcpConnection>;
const NOTHING_PUBLISHED = [0, 0] as const;

export class SocketServer extends LuaServer {
  readonly protocol = "socket" as const;
  /** The listeners of the port: one, or during a certificate change also the old one (net/listeners.ts). */
  private listeners: Listeners<TCPSocketListener<TcpConnection>> | null = null;
  /** TLS clients whose handshake is not done yet, with the tick they connected at (bounded by sweep()). */
  private readonly handshaking = new Map<TCP, number>();
  /** Writes a read makes while it runs in Lua, written when it returns (held-writes.ts). */
  private readonly held = new HeldWrites(
    (conn, bytes) => (conn.pending ? this.enqueue(conn, bytes) : this.write(conn, bytes)),
    (_conn, sends) => {
      this.node.stats.sent.socket -= sends;
      this.node.stats.sendErrors.socket += sends;
    },
  );

  constructor(opts: LuaServerOptions) {
    super({ ...opts, families: [...opts.families, socketEvents] });
  }

  async listen(): Promise<void> {
    const handler = this.handler();
    let port = this.config.port;
    this.listeners = new Listeners<TCPSocketListener<TcpConnection>>({
      tls: this.config.tls,
      label: `lua server ${this.config.bind}:${this.config.port}`,
      // bun-types 1.4.4 declares reusePort for Bun.connect only; Bun.listen takes it (SO_REUSEPORT) all the same.
      start: (pem) => Bun.listen({ hostname: this.config.bind, port, reusePort: this.reusePort, socket: handler, ...(pem && { tls: pem }) } as TCPSocketListenOptions<TcpConnection>),
      retire: (old) => old.stop(false), // its connections go on; stop() ends them one by one
    });
    port = this.listeners.current.port;
    this.startSweeping();
  }

  private handler(): SocketHandler<TcpConnection> {
    const self = this;
    const tls = this.config.tls !== null;
    return {
      // A TLS client becomes a connection (and reaches on_connect) once its handshake is done: what a
      // script sends before that would be lost.
      open(s: TCP) {
        if (tls) self.handshaking.set(s, self.tick);
        else self.opened(s);
      },
      handshake(s: TCP, success: boolean) {
        if (!self.handshaking.delete(s)) return;
        if (success) self.opened(s);
        else s.end();
      },
      data(s: TCP, chunk: Buffer) {
        s.data.readTick = self.tick;
        self.held.holding = true;
        try {
          self.events.data(s.data, chunk, MAX_MESSAGE_BYTES);
        } finally {
          self.held.holding = false;
          self.held.flush();
        }
      },
      drain(s: TCP) {
        if (s.data) self.flush(s.data);
      },
      close(s: TCP) {
        if (s.data) self.closed(s.data, s.data.closeReason);
        else self.handshaking.delete(s);
      },
      error(s: TCP, err: Error) {
        if (s.data) self.closed(s.data, err.message);
        else self.handshaking.delete(s);
      },
    };
  }

  private opened(s: TCP): void {
    const conn = this.accept(new TcpConnection(this.opening(`${s.remoteAddress}:${s.remotePort}`), s));
    s.data = conn;
    this.events.connect(conn);
  }

  /** TLS clients that did not finish their handshake within readTimeout (TLS_HANDSHAKE_SECONDS if 0) are dropped. */
  protected override sweep(tick: number): void {
    if (this.handshaking.size === 0) return;
    const limit = tick - (this.config.readTimeout > 0 ? this.config.readTimeout : TLS_HANDSHAKE_SECONDS) * this.ticksPerSecond;
    for (const [s, since] of this.handshaking) {
      if (since >= limit) continue;
      this.handshaking.delete(s);
      s.terminate();
    }
  }

  /**
   * Writes raw bytes (`conn:send`) or, for data pushed by the mesh or the API, bytes shaped by the
   * script's protocol_encode. Bytes the kernel does not take now wait for `drain`, up to a bound.
   */
  sendTo(conn: TcpConnection, data: Uint8Array | string, type: SendType, raw: boolean): string | null {
    if (!conn.open) return "connection closed";
    let bytes: Uint8Array = typeof data === "string" ? Buffer.from(data) : data;
    if (!raw) {
      const out = this.encode(bytes, conn.id, type);
      if (typeof out === "string") return out;
      bytes = out;
    }
    if (conn.pending) return this.enqueue(conn, bytes);
    if (this.held.hold(conn, bytes)) return null;
    return this.write(conn, bytes);
  }

  private write(conn: TcpConnection, bytes: Uint8Array): string | null {
    const written = conn.tcp.write(bytes);
    if (written < bytes.length) return this.enqueue(conn, bytes.subarray(Math.max(written, 0)));
    return null;
  }

  /** Raw TCP has no native topics: the node delivers to this server's subscribers (socketChannels). */
  publishNative(): readonly [number, number] {
    return NOTHING_PUBLISHED;
  }

  private enqueue(conn: TcpConnection, bytes: Uint8Array): string | null {
    if (conn.pendingBytes + bytes.length > MAX_PENDING_BYTES) {
      conn.closeReason = "too many unread bytes";
      this.node.stats.droppedClients.unread_bytes.socket++;
      log.warn(`client ${conn.id} has ${conn.pendingBytes} bytes unread, dropped`);
      conn.tcp.terminate();
      return "send failed: client too slow";
    }
    (conn.pending ??= []).push(Buffer.from(bytes));
    conn.pendingBytes += bytes.length;
    this.markStalled(conn);
    return null;
  }

  private flush(conn: TcpConnection): void {
    const s = conn.tcp;
    while (conn.pending?.length) {
      const head = conn.pending[0];
      const written = s.write(head);
      if (written < head.length) {
        conn.pending[0] = head.subarray(Math.max(written, 0));
        conn.pendingBytes -= Math.max(written, 0);
        return;
      }
      conn.pending.shift();
      conn.pendingBytes -= head.length;
    }
    conn.pending = null;
    this.unstall(conn);
    if (conn.endWhenFlushed) s.end();
  }

  protected terminate(conn: TcpConnection): void {
    conn.tcp.terminate();
  }

  closeConnection(conn: TcpConnection): void {
    this.held.flushConnection(conn); // what the script sent before closing it goes first
    // Bun does not keep what a socket did not take: bytes still pending here would be lost by ending now.
    if (conn.pending) conn.endWhenFlushed = true;
    else conn.tcp.end();
  }

  stopAccepting(): void {
    this.listeners?.close(); // no new certificate's listener from now on
    const all = this.listeners?.all ?? [];
    const wait = steerToSuccessor(this.config.port) ? STEER_MS : 0;
    setTimeout(() => all.forEach((l) => l.stop(false)), wait);
  }

  async stop(): Promise<void> {
    this.stopSweeping();
    this.listeners?.close();
    // A listener replaced for a new certificate no longer knows its connections: end them here.
    for (const conn of this.node.connections.values()) if (conn.server === this && conn instanceof TcpConnection) conn.tcp.terminate();
    for (const s of this.handshaking.keys()) s.terminate();
    this.handshaking.clear();
    for (const l of this.listeners?.all ?? []) l.stop(true);
    this.listeners = null;
  }
}
