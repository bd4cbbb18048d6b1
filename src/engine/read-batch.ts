// WebSocket messages read in one turn of the event loop, handed to Lua together at the end of the turn
// (setImmediate) instead of one by one as Bun reads each socket. Two things make that faster, measured with
// bench/echo.ts (docs/runtime.md): the Lua VM's code and data stay in the CPU's caches while it runs a batch,
// and the replies leave in one burst, so a client that waits for them is woken once per burst rather than
// once per socket. Each connection's messages still reach Lua in the order read, and before its on_close.
import type { WsConnection } from "./connection";
import { log } from "../log/logger";

/** A batch this large (messages, or bytes of their data) is handed over at once, inside the read. */
export const MAX_BATCH_MESSAGES = 4096;
export const MAX_BATCH_BYTES = 4 << 20;

export class ReadBatch {
  /** Pending messages as (connection, data) pairs, in the order read; a delivered one's connection is null. */
  private items: (WsConnection | string | Uint8Array | null)[] = [];
  /** While delivering: the index of the next pair. */
  private next = 0;
  private bytes = 0;
  private scheduled = false;
  private delivering = false;
  private readonly flushSoon = () => this.flush();
  /** Delivers the pairs from `next` that share its connection; corked, so their replies go out in one write. */
  private readonly deliverRun = () => {
    const items = this.items;
    const conn = items[this.next] as WsConnection;
    do {
      const data = items[this.next + 1] as string | Uint8Array;
      this.next += 2;
      this.deliver(conn, data);
    } while (this.next < items.length && items[this.next] === conn);
  };

  /** `deliver` hands one message to Lua (LuaEvents.message). */
  constructor(private readonly deliver: (conn: WsConnection, data: string | Uint8Array) => void) {}

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
    const items = this.items;
    while (this.next < items.length) {
      const at = this.next;
      const conn = items[at] as WsConnection | null;
      try {
        if (conn === null) this.next += 2;
        else if (conn.ws) conn.ws.cork(this.deliverRun);
        else this.deliverRun();
      } catch (e) {
        // Not expected (the scheduler catches Lua errors); the rest of the batch still goes.
        log.error(`delivering a message to lua failed: ${e instanceof Error ? e.message : String(e)}`);
        if (this.next === at) this.next += 2; // failed before delivering it: it is lost, as logged
      }
    }
    this.items = [];
    this.next = 0;
    this.bytes = 0;
    this.delivering = false;
  }

  /** Hands `conn`'s pending messages to Lua now, before its close: also from inside a delivery (a callback
   * closed it), where the other connections' messages keep their place. */
  flushConnection(conn: WsConnection): void {
    if (!this.delivering) return this.flush();
    const items = this.items;
    for (let i = this.next; i < items.length; i += 2) {
      if (items[i] !== conn) continue;
      items[i] = null;
      this.deliver(conn, items[i + 1] as string | Uint8Array);
    }
  }
}
