// In-memory queues that Lua fills (mix.queue.push) and backends drain (queue.pop over /ws/v1).
// A topic holds at most `topicSize` undelivered items and there are at most `maxTopics` topics: a push
// beyond either limit is refused with an error, never dropped silently. Consumers of a topic share its
// items round-robin; items wait while a topic has no consumer that takes them. Each item is the pushed
// JSON text and the id of the client whose callback pushed it (0 when none).
import type { QueueConfig } from "../config/schema";
import { log } from "../log/logger";

export interface Consumer {
  /** Delivers one item; false when the consumer cannot take it now (then it stays queued). */
  deliver(topic: string, json: string, clientId: number): boolean;
}

interface Topic {
  // Parallel arrays from `head` on, so an item costs no object of its own.
  items: string[];
  clients: number[];
  head: number;
  consumers: Consumer[];
  next: number;
}

export class Queues {
  private readonly topics = new Map<string, Topic>();

  constructor(private limits: QueueConfig) {}

  setLimits(limits: QueueConfig): void {
    this.limits = limits;
  }

  private topic(name: string): Topic | string {
    let t = this.topics.get(name);
    if (!t) {
      if (this.topics.size >= this.limits.maxTopics) return `too many queue topics (maxTopics ${this.limits.maxTopics})`;
      t = { items: [], clients: [], head: 0, consumers: [], next: 0 };
      this.topics.set(name, t);
    }
    return t;
  }

  /** Queues (or hands over at once) one item; returns [items waiting in the topic, error]. */
  push(name: string, json: string, clientId = 0): [number, string | null] {
    const t = this.topic(name);
    if (typeof t === "string") return [0, t];
    const waiting = t.items.length - t.head;
    if (waiting === 0 && this.handOver(name, t, json, clientId)) return [0, null];
    if (waiting >= this.limits.topicSize) return [waiting, `queue topic ${name} is full (topicSize ${this.limits.topicSize})`];
    t.items.push(json);
    t.clients.push(clientId);
    return [waiting + 1, null];
  }

  /** Gives the item to the next consumer that takes it; false when none did. */
  private handOver(name: string, t: Topic, json: string, clientId: number): boolean {
    for (let tries = 0; tries < t.consumers.length; tries++) {
      const consumer = t.consumers[t.next++ % t.consumers.length]!;
      if (consumer.deliver(name, json, clientId)) return true;
    }
    return false;
  }

  /**
   * Starts consuming topic `name` (creating it counts against maxTopics). Items already waiting are handed
   * over by the next drain(name), so the caller can answer first. Null on success, else why not.
   */
  consume(name: string, consumer: Consumer): string | null {
    const t = this.topic(name);
    if (typeof t === "string") return t;
    if (!t.consumers.includes(consumer)) t.consumers.push(consumer);
    return null;
  }

  /** Stops `consumer` on `names` (default: every topic). A topic left with no consumer and no item goes. */
  cancel(consumer: Consumer, names?: Iterable<string>): void {
    for (const name of names ?? [...this.topics.keys()]) {
      const t = this.topics.get(name);
      const i = t ? t.consumers.indexOf(consumer) : -1;
      if (i < 0) continue;
      t!.consumers.splice(i, 1);
      if (t!.consumers.length === 0 && t!.head === t!.items.length) this.topics.delete(name);
    }
  }

  /** Hands waiting items to consumers until none is left or no consumer takes more. */
  drain(name: string, t = this.topics.get(name)): void {
    if (!t) return;
    while (t.head < t.items.length && this.handOver(name, t, t.items[t.head]!, t.clients[t.head]!)) t.head++;
    if (t.head === t.items.length) {
      t.items.length = t.clients.length = t.head = 0;
    } else if (t.head > 1024 && t.head * 2 > t.items.length) {
      t.items = t.items.slice(t.head);
      t.clients = t.clients.slice(t.head);
      t.head = 0;
    }
  }

  get topicSize(): number {
    return this.limits.topicSize;
  }

  /** Every topic with its waiting items and consumer count (metrics, the console). */
  list(): { topic: string; items: number; consumers: number }[] {
    return [...this.topics].map(([topic, t]) => ({ topic, items: t.items.length - t.head, consumers: t.consumers.length }));
  }

  /** Removes up to `max` waiting items from the head of topic `name`: [json, client id] each (a handover moves them). */
  take(name: string, max: number): [string, number][] {
    const t = this.topics.get(name);
    if (!t) return [];
    const end = Math.min(t.items.length, t.head + max);
    const out: [string, number][] = [];
    for (let i = t.head; i < end; i++) out.push([t.items[i]!, t.clients[i]!]);
    t.head = end;
    this.drain(name, t);
    return out;
  }

  /** Puts items back at the head of topic `name`, in their order (ones that could not be moved). */
  restore(name: string, items: [string, number][]): void {
    const t = this.topic(name);
    if (typeof t === "string") return void log.error(`queue topic ${name}: ${items.length} items lost (${t})`);
    t.items.splice(t.head, 0, ...items.map((i) => i[0]));
    t.clients.splice(t.head, 0, ...items.map((i) => i[1]));
  }

  /** Items waiting in topic `name`. */
  size(name: string): number {
    const t = this.topics.get(name);
    return t ? t.items.length - t.head : 0;
  }
}
