// In-memory queues that Lua fills (mix.queue.push) and backends drain (queue.pop over /ws/v1).
// A topic holds at most `topicSize` undelivered items and there are at most `maxTopics` topics: a push
// beyond either limit is refused with an error, never dropped silently. Consumers of a topic share its
// items round-robin; items wait while a topic has no consumer.
import type { QueueConfig } from "../config/schema";

export interface Consumer {
  /** Delivers one item (JSON text); false when the consumer can no longer take it (then it is kept). */
  deliver(topic: string, json: string): boolean;
}

interface Topic {
  items: string[];
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

  /** Queues (or hands over at once) one item; returns [items waiting in the topic, error]. */
  push(topic: string, json: string): [number, string | null] {
    let t = this.topics.get(topic);
    if (!t) {
      if (this.topics.size >= this.limits.maxTopics) {
        return [0, `too many queue topics (maxTopics ${this.limits.maxTopics})`];
      }
      t = { items: [], head: 0, consumers: [], next: 0 };
      this.topics.set(topic, t);
    }
    if (t.items.length - t.head === 0 && this.handOver(topic, t, json)) return [0, null];
    if (t.items.length - t.head >= this.limits.topicSize) {
      return [t.items.length - t.head, `queue topic ${topic} is full (topicSize ${this.limits.topicSize})`];
    }
    t.items.push(json);
    return [t.items.length - t.head, null];
  }

  /** Gives `json` to the next consumer that takes it; false when none did. */
  private handOver(name: string, t: Topic, json: string): boolean {
    for (let tries = 0; tries < t.consumers.length; tries++) {
      const consumer = t.consumers[t.next++ % t.consumers.length];
      if (consumer.deliver(name, json)) return true;
    }
    return false;
  }

  /** Starts consuming `topic`; false when this consumer already does. Waiting items are handed over. */
  consume(topic: string, consumer: Consumer): boolean {
    let t = this.topics.get(topic);
    if (!t) {
      t = { items: [], head: 0, consumers: [], next: 0 };
      this.topics.set(topic, t);
    }
    if (t.consumers.includes(consumer)) return false;
    t.consumers.push(consumer);
    this.drain(topic, t);
    return true;
  }

  /** Stops `consumer` on every topic it consumes. */
  cancel(consumer: Consumer): void {
    for (const t of this.topics.values()) {
      const i = t.consumers.indexOf(consumer);
      if (i >= 0) t.consumers.splice(i, 1);
    }
  }

  /** Hands waiting items to consumers until none is left or no consumer takes more. */
  drain(name: string, t = this.topics.get(name)): void {
    if (!t) return;
    while (t.head < t.items.length && this.handOver(name, t, t.items[t.head])) t.head++;
    if (t.head > 1024 && t.head * 2 > t.items.length) {
      t.items = t.items.slice(t.head);
      t.head = 0;
    }
  }

  /** Items waiting in `topic`. */
  size(topic: string): number {
    const t = this.topics.get(topic);
    return t ? t.items.length - t.head : 0;
  }
}
