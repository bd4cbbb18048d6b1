// Writes to raw TCP clients held while a read runs in Lua (socket-server.ts), then written when it returns,
// each connection's in one write: a client that sends several packages in one read gets their replies in one
// system call instead of one each (docs/runtime.md). A close writes the connection's held bytes first.
import type { TcpConnection } from "./connection";
import { MAX_HELD_BYTES } from "./limits";
import { log } from "../log/logger";

type Write = (conn: TcpConnection, bytes: Uint8Array) => string | null;

export class HeldWrites {
  private readonly held = new Map<TcpConnection, Uint8Array[]>();
  private bytes = 0;
  /** Writes are held while a read runs in Lua (the socket server sets it) and while held ones are written. */
  holding = false;
  private writing = false;

  /**
   * `write` writes (or queues behind pending bytes) and says why not, like a send; `failed` learns of held
   * sends that did not go out after all (the connection closed or was dropped), which Lua took as sent.
   */
  constructor(
    private readonly write: Write,
    private readonly failed: (conn: TcpConnection, sends: number) => void,
  ) {}

  /** Holds a write (a copy: the bytes may be a view of Lua's memory, valid only now); false when it must be
   * written now instead. */
  hold(conn: TcpConnection, bytes: Uint8Array): boolean {
    if (!(this.holding || this.writing)) return false;
    const copy = Buffer.from(bytes);
    const list = this.held.get(conn);
    if (list) list.push(copy);
    else this.held.set(conn, [copy]);
    this.bytes += copy.length;
    if (this.bytes > MAX_HELD_BYTES) {
      if (this.writing) this.flushConnection(conn);
      else this.flush();
    }
    return true;
  }

  /** Writes everything held. Writes made meanwhile (a dropped client's on_close) are held and written in the
   * same loop, in order. */
  flush(): void {
    if (this.writing || this.held.size === 0) return;
    this.writing = true;
    try {
      for (const conn of this.held.keys()) this.flushConnection(conn);
    } finally {
      this.writing = false;
    }
  }

  /** Writes `conn`'s held bytes now, in one write. */
  flushConnection(conn: TcpConnection): void {
    const list = this.held.get(conn);
    if (!list) return;
    this.held.delete(conn);
    const bytes = list.length === 1 ? list[0]! : Buffer.concat(list);
    this.bytes -= bytes.length;
    let err: string | null;
    try {
      err = conn.open ? this.write(conn, bytes) : "connection closed";
    } catch (e) {
      err = e instanceof Error ? e.message : String(e);
      log.error(`writing held bytes to client ${conn.id} failed: ${err}`);
    }
    if (err !== null) this.failed(conn, list.length);
  }
}
