// One /ws/v1 connection, as the queues see it: a Consumer of the topics it popped. Items go out as
// `{"e":"queue.pop","p":{"n":node index,"c":"client id","t":topic,"d":data},"id":null}`, built around the
// pushed JSON text without parsing it; with acks the event also carries `"k":"<key>"`. `n` is the index of the
// engine that queued the item, a number as in connmix's docs: the one the client id carries (nodeOf), or for
// an item pushed outside a client's callback (client id 0), this engine's.
//
// Flow control: an item is sent only while the socket is drained (Bun's send did not report backpressure
// since the last `drain`) and while fewer than `window` items are in flight. An item is in flight until
//  - with acks: queue.ack names its key;
//  - without acks (the bare-list pop of the PHP client): the peer answers a WebSocket ping sent after it (its
//    pong proves it read everything before the ping).
// When the connection goes away (close, crash, writeTimeout), unacknowledged items go back to the head of
// their topics for the next consumer (at-least-once); items of a consumer without acks that were not
// confirmed are dropped, counted in connmix_engine_queue_dropped_total and logged.
import type { ServerWebSocket } from "bun";
import { log } from "../log/logger";
import { nodeOf } from "../net/client-ids";
import type { Consumer, Item, Queues } from "../queue/queues";
import { topicCounts } from "../queue/drops";

/** Items in flight per consumer unless its pop says `w`. */
export const DEFAULT_WINDOW = 100;
export const MAX_WINDOW = 10_000;
/** Bytes that may wait for a /ws/v1 peer (Bun's backpressureLimit): past it a reply closes the connection. */
export const MAX_UNREAD_BYTES = 16 << 20;

/** An item in flight: its topic, JSON text, client id and ref in a durable store. */
type InFlight = [topic: string, json: string, clientId: number, ref: string];

/** Adds `ref` to the list of `topic` in `byTopic`. */
function collect(byTopic: Map<string, string[]>, topic: string, ref: string): void {
  const list = byTopic.get(topic);
  if (list) list.push(ref);
  else byTopic.set(topic, [ref]);
}

export class ApiSocket implements Consumer {
  ws: ServerWebSocket<ApiSocket> | null = null;
  readonly topics = new Set<string>();
  /** When writes started to back up (ms); 0 when they are not. */
  stalledSince = 0;
  /** Null until the first queue.pop chooses: true when its items wait for queue.ack. */
  acks: boolean | null = null;
  window = DEFAULT_WINDOW;
  /** Why it went away, for the log and the dropped metric ("write_timeout" when the engine dropped it). */
  goneReason = "consumer_gone";
  /** Items in flight by key (a sequence number), in the order they were sent. */
  private readonly inflight = new Map<number, InFlight>();
  private seq = 0;
  /** Bun reported backpressure: nothing more is sent until `drain`. */
  private blocked = false;
  /** Without acks: the highest key covered by a ping, and whether a ping check is scheduled. */
  private pinged = 0;
  private pingQueued = false;
  /** `","t":"<topic>","d":` (or with `"k":"` before the key) per topic: the part of an event that depends on it. */
  private readonly topicParts = new Map<string, string>();
  /** `{"e":"queue.pop","p":{"n":` (legacy: everything up to the client id). */
  private head = '{"e":"queue.pop","p":{"n":';
  /** Events in the older protocol's shape (legacy.ts). */
  private legacy = false;

  /**
   * `node`: this engine (read at each delivery: a renumber changes its index); `address`: the peer's IP, for
   * the log (Bun no longer knows it once the socket closed).
   */
  constructor(private readonly queues: Queues, private readonly node: { readonly index: number }, readonly address: string) {}

  /** From now on items go out as {"event":"queue.consume","result":{"client_id","queue","data"},"id":null}. */
  useLegacyEvents(): void {
    this.head = '{"event":"queue.consume","result":{"client_id":"';
    this.legacy = true;
    this.topicParts.clear();
  }

  deliver(topic: string, json: string, clientId: number, ref: string): boolean {
    const ws = this.ws;
    if (!ws || this.blocked || this.inflight.size >= this.window) return false;
    let part = this.topicParts.get(topic);
    if (part === undefined) {
      if (this.legacy) part = `","queue":${JSON.stringify(topic)},"data":`;
      else part = this.acks ? `","t":${JSON.stringify(topic)},"k":"` : `","t":${JSON.stringify(topic)},"d":`;
      this.topicParts.set(topic, part);
    }
    const key = ++this.seq;
    const head = this.legacy ? this.head : this.head + (clientId === 0 ? this.node.index : nodeOf(clientId)) + ',"c":"';
    const text = this.acks ? head + clientId + part + key + '","d":' + json + '},"id":null}' : head + clientId + part + json + '},"id":null}';
    const status = ws.sendText(text);
    if (status === 0) return false; // closed: the item stays queued
    if (status === -1) this.backedUp();
    this.inflight.set(key, [topic, json, clientId, ref]);
    if (!this.acks && !this.pingQueued) {
      this.pingQueued = true;
      queueMicrotask(() => this.ping());
    }
    return true;
  }

  /** Without acks: one ping after each batch of sends; its pong confirms the batch. */
  private ping(): void {
    this.pingQueued = false;
    if (!this.ws || this.seq === this.pinged) return;
    this.pinged = this.seq;
    this.ws.ping(String(this.seq));
  }

  /** A pong: every item sent before the ping it answers has been read by the peer. */
  pong(data: Buffer): void {
    if (this.acks || data.length === 0) return; // Bun's own idle pings carry nothing
    const upTo = Number(data.toString());
    if (!Number.isInteger(upTo)) return;
    this.settle((key) => key <= upTo);
    this.pull();
  }

  /** queue.ack: settles the items with these keys; returns how many were in flight. */
  ack(keys: number[]): number {
    let n = 0;
    const byTopic = new Map<string, string[]>();
    for (const key of keys) {
      const item = this.inflight.get(key);
      if (!item) continue; // already acknowledged, or returned when the connection was lost before
      this.inflight.delete(key);
      collect(byTopic, item[0], item[3]);
      n++;
    }
    for (const [topic, refs] of byTopic) this.queues.settled(topic, refs);
    if (n > 0) this.pull();
    return n;
  }

  /** Settles the in-flight items (in key order) that `done` accepts. */
  private settle(done: (key: number) => boolean): void {
    const byTopic = new Map<string, string[]>();
    for (const [key, item] of this.inflight) {
      if (!done(key)) break;
      this.inflight.delete(key);
      collect(byTopic, item[0], item[3]);
    }
    for (const [topic, refs] of byTopic) this.queues.settled(topic, refs);
  }

  /** Sends a response; a reply that cannot be sent any more (closed socket) is dropped. */
  reply(text: string): void {
    const ws = this.ws;
    if (!ws) return;
    const status = ws.sendText(text);
    if (status === -1) this.backedUp();
    else if (status === 0) {
      // Bun dropped it: MAX_UNREAD_BYTES already wait for the peer. Without every answer the backend can no
      // longer match answers to requests, so the connection goes, with a word, rather than lose them silently.
      log.warn(`api connection ${this.address} does not read its replies (over ${MAX_UNREAD_BYTES >> 20} MiB wait), closed`);
      ws.terminate();
    }
  }

  private backedUp(): void {
    this.blocked = true;
    if (!this.stalledSince) this.stalledSince = performance.now();
  }

  /** Takes the items waiting in its topics, as far as the socket and the window allow. */
  pull(): void {
    for (const topic of this.topics) this.queues.drain(topic);
  }

  /** The peer took the backlog: hand over whatever waited meanwhile. */
  drained(): void {
    this.blocked = false;
    this.stalledSince = 0;
    this.pull();
  }

  /** Gone: every topic forgets it, and what it had in flight is returned (acks) or dropped and counted. */
  closed(): void {
    const address = this.address;
    this.ws = null;
    this.queues.cancel(this, this.topics);
    this.topics.clear();
    if (this.inflight.size === 0) return;
    const byTopic = new Map<string, Item[]>();
    for (const [topic, json, clientId, ref] of this.inflight.values()) {
      let list = byTopic.get(topic);
      if (!list) byTopic.set(topic, (list = []));
      list.push([json, clientId, ref]);
    }
    const count = this.inflight.size;
    this.inflight.clear();
    const list = topicCounts(Array.from(byTopic, ([t, items]) => [t, items.length] as const));
    if (this.acks) {
      for (const [topic, items] of byTopic) this.queues.requeue(topic, items);
      log.info(`api connection ${address} went away (${this.goneReason}) with ${count} unacknowledged queue items, returned to the head of their topics (${list})`);
    } else {
      for (const [topic, items] of byTopic) this.queues.dropped(topic, items.map((i) => i[2]), this.goneReason);
      log.warn(`api connection ${address} went away (${this.goneReason}) with ${count} queue items it may not have read, dropped (${list})`);
    }
  }
}
