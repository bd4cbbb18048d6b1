// Writes to WebSocket clients held while a read batch runs in Lua (read-batch.ts), then done together: each
// connection's sends under one cork (one write), publications in their place between them. Over loopback,
// the kernel wakes a client that sleeps waiting for its replies on each write that reaches it; replies
// written as the batch runs, one connection at a time, wake it once per connection, which costs the engine's
// CPU as much as the Lua work (docs/runtime.md). Held, they go out in one burst after the batch.
//
// Only sends known to succeed are held: to an open connection with nothing backed up (Connection.replies),
// so Lua's result (success) is already right. A publication's result is its subscriber count, known when it
// is held. What else acts on a socket (a close, a subscription change) writes the held ones first, so a
// client sees everything in the order Lua did it.
import type { WsConnection } from "./connection";
import { log } from "../log/logger";
import { MAX_HELD_BYTES } from "./limits";

type Publish = (channel: string, data: string | Uint8Array, type: number) => void;

export class Outbox {
  /** (connection or channel, data, type) triples, in the order made: a send, or a publication. */
  private items: (WsConnection | string | Uint8Array | number)[] = [];
  private next = 0;
  private bytes = 0;
  /** Writes are held while a batch runs (ReadBatch sets it) and while held ones are done. */
  holding = false;
  private writing = false;
  /** Does the triples from `next` up to the next send to another connection, under this one's cork: its sends
   * and the publications between them (which only queue in Bun until it writes) make one write. */
  private readonly writeRun = () => {
    const items = this.items;
    const conn = items[this.next] as WsConnection;
    const ws = conn.ws!;
    do {
      const target = items[this.next];
      const data = items[this.next + 1] as string | Uint8Array;
      const type = items[this.next + 2] as number;
      this.next += 3;
      if (typeof target === "string") this.publish(target, data, type);
      else {
        const status = type === 2 ? ws.sendBinary(data as Uint8Array) : ws.sendText(data as string);
        if (status <= 0) this.written(conn, status);
      }
    } while (this.next < items.length && (items[this.next] === conn || typeof items[this.next] === "string"));
  };

  /**
   * `written` learns of a held send that did not go out at once: -1 queued behind earlier data, 0 lost (the
   * connection closed: Bun closes one past its backpressure limit). `publish` does a publication.
   */
  constructor(
    private readonly written: (conn: WsConnection, status: number) => void,
    private readonly publish: Publish,
  ) {}

  /** Holds a send of text (type 1, a string) or bytes (type 2: copied, they may be a view of Lua's memory);
   * false when it must be sent now instead. */
  hold(conn: WsConnection, data: string | Uint8Array, type: number): boolean {
    if (!(this.holding || this.writing) || !conn.replies) return false;
    this.add(conn, data, type);
    return true;
  }

  /** Holds a publication (data as for hold); false when it must be done now. */
  holdPublication(channel: string, data: string | Uint8Array, type: number): boolean {
    if (!(this.holding || this.writing)) return false;
    this.add(channel, data, type);
    return true;
  }

  private add(target: WsConnection | string, data: string | Uint8Array, type: number): void {
    this.items.push(target, typeof data === "string" ? data : new Uint8Array(data), type);
    this.bytes += data.length;
    if (this.bytes > MAX_HELD_BYTES) this.flush();
  }

  /** Does every held write, in order. Writes made meanwhile (a close handler's on_close) join the end. */
  flush(): void {
    if (this.writing || this.items.length === 0) return;
    this.writing = true;
    const items = this.items;
    while (this.next < items.length) {
      const at = this.next;
      const target = items[at];
      try {
        if (typeof target === "string") {
          this.next += 3;
          this.publish(target, items[at + 1] as string | Uint8Array, items[at + 2] as number);
        } else {
          (target as WsConnection).ws!.cork(this.writeRun);
          // Should Bun not run the callback (a socket it closed), the sends go uncorked and report the close.
          if (this.next === at) this.writeRun();
        }
      } catch (e) {
        // Not expected (Bun's writes report failure by status); the other writes still go.
        log.error(`writing held sends failed: ${e instanceof Error ? e.message : String(e)}`);
        if (this.next === at) this.next += 3;
      }
    }
    this.items = [];
    this.next = 0;
    this.bytes = 0;
    this.writing = false;
  }
}
