// WebSocket messages read in one turn of the event loop, handed to Lua together at the end of the turn
// (setImmediate) instead of one by one as Bun reads each socket, with the sends they make held (outbox.ts)
// until the batch ends. Measured with bench/echo.ts (docs/runtime.md): the Lua VM's code and data stay in
// the CPU's caches while it runs a batch, and the replies leave in one burst. Each connection's messages
// still reach Lua in the order read, and before its on_close.
import type { WsConnection } from "./connection";
import type { Outbox } from "./outbox";
import { log } from "../log/logger";
import { MAX_BATCH_BYTES, MAX_BATCH_MESSAGES } from "./limits";

export class ReadBatch {
  /** Pending messages as (connection, data) pairs, in the order read; a delivered one's connection is null. */
  private items: (WsConnection | string | Uint8Array | null)[] = [];
  /** While delivering: the index of the next pair. */
  private next = 0;
  private bytes = 0;
  private scheduled = false;
  private delivering = false;
  private readonly flushSoon = () => this.flush();

  /** `deliver` hands one message to Lua (LuaEvents.message); `outbox` holds the batch's sends until it ends. */
  constructor(
    private readonly deliver: (conn: WsConnection, data: string | Uint8Array) => void,
    private readonly outbox: Outbox,
  ) {}

  add(conn: WsConnection, data: string | Uint8Array): void {
    this.items.push(conn, data);
    this.bytes += data.length;
    if (this.items.length >= 2 * MAX_BATCH_MESSAGES || this.bytes >= MAX_BATCH_BYTES) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  /** Hands every pending message to Lua now, in order. Called inside a delivery (re-entered), it does nothing:
   * the running delivery goes on to the end. */
  flush(): void {
    this.scheduled = false;
    if (this.delivering || this.items.length === 0) return;
    this.delivering = true;
    this.outbox.holding = true;
    const items = this.items;
    while (this.next < items.length) {
      const at = this.next;
      const conn = items[at] as WsConnection | null;
      this.next = at + 2;
      if (conn !== null) this.deliverOne(conn, items[at + 1] as string | Uint8Array);
    }
    this.items = [];
    this.next = 0;
    this.bytes = 0;
    this.delivering = false;
    this.outbox.holding = false;
    this.outbox.flush();
  }

  private deliverOne(conn: WsConnection, data: string | Uint8Array): void {
    try {
      this.deliver(conn, data);
    } catch (e) {
      // Not expected (the scheduler catches Lua errors); the other messages still go.
      log.error(`delivering a message of client ${conn.id} to lua failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Hands `conn`'s pending messages to Lua now, before its close: also from inside a delivery (a callback
   * closed it), where the other connections' messages keep their place. */
  flushConnection(conn: WsConnection): void {
    if (!this.delivering) return this.flush();
    const items = this.items;
    for (let i = this.next; i < items.length; i += 2) {
      if (items[i] !== conn) continue;
      items[i] = null;
      this.deliverOne(conn, items[i + 1] as string | Uint8Array);
    }
  }
}
