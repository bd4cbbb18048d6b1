// One client connection, WebSocket or raw TCP, as the engine sees it. It is the SerialOwner of its
// callbacks (lua/scheduler.ts): one at a time, in arrival order.
import type { ServerWebSocket, Socket } from "bun";
import type { SerialOwner } from "../lua/scheduler";
import type { LuaServer } from "./lua-server";

export class Connection implements SerialOwner {
  busy = false;
  backlog: (() => void)[] | null = null;
  settled: (() => void) | undefined = undefined;
  open = true;
  ws: ServerWebSocket<Connection> | null = null;
  tcp: Socket<Connection> | null = null;
  /** Bytes a TCP client has not accepted yet (written when it drains). */
  pending: Uint8Array[] | null = null;
  pendingBytes = 0;
  /** A close was asked while bytes were still pending: the TCP connection ends once they are written. */
  endWhenFlushed = false;
  /** When writes started to back up (ms), for writeTimeout; 0 when not backed up. */
  stalledSince = 0;
  /** Channels of a socket connection (WebSocket ones live in Bun's topics). */
  channels: Set<string> | null = null;
  /** Release the pending wait_context_value calls on this connection (another connection's callback may wait too). */
  waiters: (() => void)[] | null = null;
  /** The server's sweep tick of the last read (see LuaServer.dropIdle). */
  readTick = 0;
  /** The server's readTimeout and writeTimeout (seconds) when this connection opened: an edit applies to new ones. */
  readTimeout = 0;
  writeTimeout = 0;
  /** Why the engine closed this connection, for on_close (e.g. "read timeout"); null when it did not. */
  closeReason: string | null = null;
  /** A close asked for during on_handshake, done once the upgrade completed. */
  closeOnOpen: [number, string] | null = null;
  /** Messages sent during on_handshake, before the upgrade completed. */
  early: [string | Uint8Array, number][] | null = null;

  constructor(readonly id: number, readonly server: LuaServer, readonly remoteAddr: string) {}

  /** A WebSocket send succeeds at once: open, not closing, nothing backed up (see SerialOwner.replies). */
  get replies(): boolean {
    return this.ws !== null && this.open && this.stalledSince === 0 && this.closeReason === null;
  }

  /** Its backlog overflowed (see Scheduler): the client keeps sending while a callback of it waits. */
  overflow(): void {
    this.server.dropOverflowing(this);
  }

  wake(): void {
    const w = this.waiters;
    this.waiters = null;
    if (w) for (const resolve of w) resolve();
  }
}
