// Sends to WebSocket clients held while a read batch runs in Lua (read-batch.ts), then written together, each
// connection's under one cork (one write). Over loopback, the kernel wakes a client that sleeps waiting for its
// replies on each write that reaches it; replies written as the batch runs, one connection at a time, wake it
// once per connection, and that costs the engine's CPU as much as the Lua work (docs/runtime.md). Held, they
// go out in one burst after the batch.
//
// Only sends known to succeed are held: to an open connection with nothing backed up (Connection.replies),
// so Lua's result (success) is already right. What else writes to a socket (a close, a publish) writes the
// held sends first, so a client sees everything in the order Lua did it.
import type { WsConnection } from "./connection";

/** Held bytes past which the outbox is written at once. */
export const MAX_HELD_BYTES = 1 << 20;

export class Outbox {
  /** (connection, data, type) triples, in the order sent. */
  private items: (WsConnection | string | Uint8Array | number)[] = [];
  private next = 0;
  private bytes = 0;
  /** Sends are held while a batch runs (ReadBatch sets it) and while held ones are written. */
  holding = false;
  private writing = false;
  /** Writes the triples from `next` that share its connection (under that connection's cork). */
  private readonly writeRun = () => {
    const items = this.items;
    const conn = items[this.next] as WsConnection;
    const ws = conn.ws!;
    do {
      const data = items[this.next + 1] as string | Uint8Array;
      const type = items[this.next + 2] as number;
      this.next += 3;
      const status = type === 2 ? ws.sendBinary(data as Uint8Array) : ws.sendText(data as string);
      if (status <= 0) this.written(conn, status);
    } while (this.next < items.length && items[this.next] === conn);
  };

  /** `written` learns of a held send that did not go out at once: -1 queued behind earlier data, 0 lost
   * (the connection closed: Bun closes one past its backpressure limit). */
  constructor(private readonly written: (conn: WsConnection, status: number) => void) {}

  /** Holds a send of text (type 1, a string) or bytes (type 2); false when it must be sent now instead. */
  hold(conn: WsConnection, data: string | Uint8Array, type: number): boolean {
    if (!(this.holding || this.writing) || !conn.replies) return false;
    this.items.push(conn, data, type);
    this.bytes += data.length;
    if (this.bytes > MAX_HELD_BYTES) this.flush();
    return true;
  }

  /** Writes every held send, in order. Sends made meanwhile (a close handler's on_close) join the end. */
  flush(): void {
    if (this.writing || this.items.length === 0) return;
    this.writing = true;
    const items = this.items;
    try {
      while (this.next < items.length) (items[this.next] as WsConnection).ws!.cork(this.writeRun);
    } finally {
      this.items = [];
      this.next = 0;
      this.bytes = 0;
      this.writing = false;
    }
  }
}
