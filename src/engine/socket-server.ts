// `socket` servers: raw TCP through Bun.listen. The entry script frames the byte stream itself
// (protocol_input/protocol_decode, see lua/api/socket.lua); pushed data goes through protocol_encode.
import type { Socket, TCPSocketListener, TCPSocketListenOptions } from "bun";
import { log } from "../log/logger";
import { socketEvents, EV } from "../lua/api/connection";
import type { Connection } from "./connection";
import type { SendType } from "./host";
import { LuaServer, type LuaServerOptions } from "./lua-server";
import { MAX_MESSAGE_BYTES, MAX_PENDING_BYTES } from "./limits";
import { STEER_MS, steerToSuccessor } from "../handover/steer";

type TCP = Socket<Connection>;
const NOTHING_PUBLISHED = [0, 0] as const;

export class SocketServer extends LuaServer {
  readonly protocol = "socket" as const;
  private listener: TCPSocketListener<Connection> | null = null;

  constructor(opts: LuaServerOptions) {
    super({ ...opts, families: [...opts.families, socketEvents] });
  }

  async listen(): Promise<void> {
    const self = this;
    // bun-types 1.4.4 declares reusePort for Bun.connect only; Bun.listen takes it (SO_REUSEPORT) all the same.
    const options: TCPSocketListenOptions<Connection> & { reusePort: boolean } = {
      hostname: this.config.bind,
      port: this.config.port,
      reusePort: this.reusePort,
      socket: {
        open(s: TCP) {
          const conn = self.newConnection(`${s.remoteAddress}:${s.remotePort}`);
          conn.tcp = s;
          s.data = conn;
          self.vm.scheduler.dispatch(conn, EV.connect, conn.id, { addr: conn.remoteAddr, binary: true });
        },
        data(s: TCP, chunk: Buffer) {
          s.data.readTick = self.tick;
          self.vm.scheduler.dispatch(s.data, EV.data, s.data.id, chunk, MAX_MESSAGE_BYTES);
        },
        drain(s: TCP) {
          self.flush(s.data);
        },
        close(s: TCP) {
          self.closed(s.data, s.data.closeReason, EV.close);
        },
        error(s: TCP, err: Error) {
          self.closed(s.data, err.message, EV.close);
        },
      },
    };
    this.listener = Bun.listen(options);
    this.startSweeping();
  }

  /**
   * Writes raw bytes (`conn:send`) or, for data pushed by the mesh or the API, bytes shaped by the
   * script's protocol_encode. Bytes the kernel does not take now wait for `drain`, up to a bound.
   */
  sendTo(conn: Connection, data: Uint8Array | string, type: SendType, raw: boolean): string | null {
    const s = conn.tcp;
    if (!s || !conn.open) return "connection closed";
    let bytes: Uint8Array = typeof data === "string" ? Buffer.from(data) : data;
    if (!raw) {
      const out = this.encode(bytes, conn.id, type);
      if (typeof out === "string") return out;
      bytes = out;
    }
    if (conn.pending) return this.enqueue(conn, bytes);
    const written = s.write(bytes);
    if (written < bytes.length) return this.enqueue(conn, bytes.subarray(Math.max(written, 0)));
    return null;
  }

  /** Raw TCP has no native topics: the node delivers to this server's subscribers (socketChannels). */
  publishNative(): readonly [number, number] {
    return NOTHING_PUBLISHED;
  }

  private enqueue(conn: Connection, bytes: Uint8Array): string | null {
    if (conn.pendingBytes + bytes.length > MAX_PENDING_BYTES) {
      conn.closeReason = "too many unread bytes";
      log.warn(`client ${conn.id} has ${conn.pendingBytes} bytes unread, dropped`);
      conn.tcp?.terminate();
      return "send failed: client too slow";
    }
    (conn.pending ??= []).push(Buffer.from(bytes));
    conn.pendingBytes += bytes.length;
    this.markStalled(conn);
    return null;
  }

  private flush(conn: Connection): void {
    const s = conn.tcp;
    while (s && conn.pending?.length) {
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
    if (conn.endWhenFlushed) s?.end();
  }

  protected terminate(conn: Connection): void {
    conn.tcp?.terminate();
  }

  closeConnection(conn: Connection): void {
    // Bun does not keep what a socket did not take: bytes still pending here would be lost by ending now.
    if (conn.pending) conn.endWhenFlushed = true;
    else conn.tcp?.end();
  }

  stopAccepting(): void {
    const listener = this.listener;
    if (!listener) return;
    const wait = steerToSuccessor(this.config.port) ? STEER_MS : 0;
    setTimeout(() => listener.stop(false), wait);
  }

  async stop(): Promise<void> {
    this.stopSweeping();
    this.listener?.stop(true);
    this.listener = null;
  }
}
