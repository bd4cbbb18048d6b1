// One client connection as the engine sees it: what every transport shares (Connection), and what only a
// WebSocket (WsConnection) or a TCP socket (TcpConnection) holds. A Connection itself has no transport:
// `connmix test` records what its script does with one (src/luatest/memory-server.ts). Each is the
// SerialOwner of its callbacks (lua/scheduler.ts): one at a time, in arrival order. Fixed fields, set in the
// constructor: nothing is added to a connection later, and nothing is allocated per frame.
import type { ServerWebSocket, Socket } from "bun";
import type { SerialOwner } from "../lua/scheduler";
import type { LuaServer } from "./lua-server";

/** What a connection starts with (LuaServer.opening): its id, its server, and that server's tick and timeouts now. */
export interface Opening {
  id: number;
  server: LuaServer;
  remoteAddr: string;
  readTick: number;
  readTimeout: number;
  writeTimeout: number;
}

export class Connection implements SerialOwner {
  readonly id: number;
  readonly server: LuaServer;
  readonly remoteAddr: string;
  /** The server's readTimeout and writeTimeout (seconds) when this connection opened: an edit applies to new ones. */
  readonly readTimeout: number;
  readonly writeTimeout: number;
  // SerialOwner: the scheduler's state of this connection's callbacks.
  busy = false;
  backlog: (() => void)[] | null = null;
  backlogBytes = 0;
  settled: (() => void) | undefined = undefined;
  open = true;
  /** The server's sweep tick of the last read (see LuaServer.dropIdle). */
  readTick: number;
  /** When writes started to back up (ms), for writeTimeout; 0 when not backed up. */
  stalledSince = 0;
  /** Channels of a socket connection, or of a WebSocket one still in on_handshake (then Bun's topics). */
  channels: Set<string> | null = null;
  /** Release the pending wait_context_value calls on this connection (another connection's callback may wait too). */
  waiters: (() => void)[] | null = null;
  /** Why the engine closed this connection, for on_close (e.g. "read timeout"); null when it did not. */
  closeReason: string | null = null;

  constructor(o: Opening) {
    this.id = o.id;
    this.server = o.server;
    this.remoteAddr = o.remoteAddr;
    this.readTick = o.readTick;
    this.readTimeout = o.readTimeout;
    this.writeTimeout = o.writeTimeout;
  }

  /** A send succeeds at once (see SerialOwner.replies): only an open WebSocket with nothing backed up. */
  get replies(): boolean {
    return false;
  }

  /** It has a transport that a read timeout closes: an upgraded WebSocket or a TCP socket. */
  get live(): boolean {
    return false;
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

/** A WebSocket client: in on_handshake until Bun upgrades it, then `ws`. */
export class WsConnection extends Connection {
  /** The socket once upgraded; null during on_handshake. */
  ws: ServerWebSocket<WsConnection> | null = null;
  /** Messages sent during on_handshake, before the upgrade completed, and their bytes. */
  early: [string | Uint8Array, number][] | null = null;
  earlyBytes = 0;
  /** A close asked for during on_handshake, done once the upgrade completed. */
  closeOnOpen: [number, string] | null = null;
  /** The engine closed it (a script, the API, a timeout, a limit): messages read with the close are not delivered. */
  closedByServer = false;
  /** Such messages, counted (NodeStats.droppedMessages.after_close) and logged once, at on_close. */
  droppedAfterClose = 0;

  override get replies(): boolean {
    return this.ws !== null && this.open && this.stalledSince === 0 && this.closeReason === null;
  }

  override get live(): boolean {
    return this.ws !== null;
  }
}

/** A raw TCP client. */
export class TcpConnection extends Connection {
  /** Bytes the client has not accepted yet (written when it drains). */
  pending: Uint8Array[] | null = null;
  pendingBytes = 0;
  /** A close was asked while bytes were still pending: the connection ends once they are written. */
  endWhenFlushed = false;

  constructor(o: Opening, readonly tcp: Socket<TcpConnection>) {
    super(o);
  }

  override get live(): boolean {
    return true;
  }
}
