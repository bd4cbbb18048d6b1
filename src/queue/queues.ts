// In-memory queues that Lua fills (mix.queue.push) and backends drain (queue.pop over /ws/v1).
//
// A topic holds at most `topicSize` waiting items, and at most `maxTopics` topics hold items: a push beyond
// either limit is refused with an error, never dropped silently. A topic that only a consumer named holds
// nothing and does not count, so consumers cannot use up the topics scripts push to. Consumers of a topic
// share its items round-robin; items wait while no consumer takes them.
//
// An item handed to a consumer is in flight until the consumer settles it: acknowledged (or, for a consumer
// without acks, confirmed received), returned to the head of its topic (restore), or dropped and counted
// (dropped). A topic is forgotten once it has no consumer, no waiting item and nothing in flight.
//
// With a durable store (Redis, redis-feed.ts) the items live there: scripts push to the store, the store feeds
// the topics this engine's consumers want into these queues (each item carrying its reference in the store),
// and settled or dropped items are acknowledged to it.
import type { QueueConfig } from "../config/schema";

/** What bounds the queues. */
export type QueueLimits = Pick<QueueConfig, "topicSize" | "maxTopics">;
import { DropCounts } from "./drops";

export interface Consumer {
  /** Delivers one item (`ref`: its id in a durable store, "" in memory); false when the consumer cannot take it now. */
  deliver(topic: string, json: string, clientId: number, ref: string): boolean;
}

/** One queue item: the pushed JSON text, the client whose callback pushed it (0: none), its id in a durable store. */
export type Item = [json: string, clientId: number, ref: string];

/** Where the items of a durable queue live (redis-feed.ts). */
export interface DurableStore {
  push(topic: string, json: string, clientId: number): Promise<[number, string | null]>;
  /** Feeds topic `name` into `into` while it has consumers here. */
  follow(name: string, into: FeedTarget): void;
  /** Items of topic `name` are done with (acknowledged, confirmed read, or dropped and counted). */
  settled(name: string, refs: string[]): void;
  /** Items not yet acknowledged, per topic, in the store (a stopping engine logs them). */
  backlog(): Promise<[topic: string, items: number][]>;
  /**
   * Topic `name` has no consumer here any more and let go of items the store had handed it: they stay
   * pending in the store, where the next follow of the topic (or another engine's claim) takes them.
   */
  released(name: string): void;
}

/** What a durable store feeds: how many items topic `name` wants now (-1: none, it has no consumer). */
export interface FeedTarget {
  wants(): number;
  append(items: Item[]): void;
  /** Refs of the items it holds (waiting or in flight), so the store does not feed them twice. */
  holds(ref: string): boolean;
}

/** Items a durable topic keeps fetched ahead of its consumers. */
const FEED_AHEAD = 64;

interface Topic {
  // Parallel arrays from `head` on, so an item costs no object of its own.
  items: string[];
  clients: number[];
  refs: string[];
  head: number;
  consumers: Consumer[];
  next: number;
  /** Items handed to consumers and not settled yet. */
  inflight: number;
  /** It holds waiting items, so it counts against maxTopics. */
  counted: boolean;
}

export class Queues {
  private readonly topics = new Map<string, Topic>();
  /** Topics that hold waiting items. */
  private held = 0;
  /** Items dropped, by topic and reason (connmix_engine_queue_dropped_total). */
  readonly drops = new DropCounts();
  /** Items returned to the head of their topic by a consumer that went away without acknowledging them. */
  redelivered = 0;

  /** Refs of durable items held here (waiting or in flight). */
  private readonly heldRefs = new Set<string>();

  constructor(private limits: QueueLimits, private readonly store: DurableStore | null = null) {}

  /** The items live in a durable store: pushes go there (pushDurable). */
  get durable(): boolean {
    return this.store !== null;
  }

  pushDurable(name: string, json: string, clientId: number): Promise<[number, string | null]> {
    return this.store!.push(name, json, clientId);
  }

  /** Durable queues: what the store holds per topic. */
  durableBacklog(): Promise<[string, number][]> {
    return this.store ? this.store.backlog() : Promise.resolve([]);
  }

  setLimits(limits: QueueLimits): void {
    this.limits = limits;
  }

  get topicSize(): number {
    return this.limits.topicSize;
  }

  get maxTopics(): number {
    return this.limits.maxTopics;
  }

  private topic(name: string): Topic {
    let t = this.topics.get(name);
    if (!t) {
      t = { items: [], clients: [], refs: [], head: 0, consumers: [], next: 0, inflight: 0, counted: false };
      this.topics.set(name, t);
    }
    return t;
  }

  /** Marks `t` as holding items; an error when that would pass maxTopics (unless `force`). */
  private hold(t: Topic, force = false): string | null {
    if (t.counted) return null;
    if (!force && this.held >= this.limits.maxTopics) return `too many queue topics (maxTopics ${this.limits.maxTopics})`;
    t.counted = true;
    this.held++;
    return null;
  }

  /** After `t` lost items or a consumer: stops counting it when empty, forgets it when nothing refers to it. */
  private settleTopic(name: string, t: Topic): void {
    if (t.head < t.items.length) return;
    t.items.length = t.clients.length = t.refs.length = t.head = 0;
    if (t.counted) {
      t.counted = false;
      this.held--;
    }
    if (t.consumers.length === 0 && t.inflight === 0) this.topics.delete(name);
  }

  /** Queues (or hands over at once) one item; returns [items waiting in the topic, error]. */
  push(name: string, json: string, clientId = 0): [number, string | null] {
    const t = this.topic(name);
    const waiting = t.items.length - t.head;
    if (waiting === 0 && this.handOver(name, t, json, clientId, "")) return [0, null];
    if (waiting >= this.limits.topicSize) return [waiting, `queue topic ${name} is full (topicSize ${this.limits.topicSize})`];
    const err = this.hold(t);
    if (err !== null) {
      this.settleTopic(name, t);
      return [0, err];
    }
    t.items.push(json);
    t.clients.push(clientId);
    t.refs.push("");
    return [waiting + 1, null];
  }

  /** Gives the item to the next consumer that takes it; false when none did. */
  private handOver(name: string, t: Topic, json: string, clientId: number, ref: string): boolean {
    for (let tries = 0; tries < t.consumers.length; tries++) {
      const consumer = t.consumers[t.next++ % t.consumers.length]!;
      if (consumer.deliver(name, json, clientId, ref)) {
        t.inflight++;
        return true;
      }
    }
    return false;
  }

  /**
   * Starts consuming topic `name` (a topic named only by consumers does not count against maxTopics). Items
   * already waiting are handed over by the next drain(name), so the caller can answer first.
   */
  consume(name: string, consumer: Consumer): void {
    const t = this.topic(name);
    if (!t.consumers.includes(consumer)) t.consumers.push(consumer);
    if (this.store && t.consumers.length === 1) this.store.follow(name, this.feedTarget(name));
  }

  /** How a durable store feeds topic `name`. */
  private feedTarget(name: string): FeedTarget {
    return {
      wants: () => {
        const t = this.topics.get(name);
        return !t || t.consumers.length === 0 ? -1 : Math.max(0, FEED_AHEAD - (t.items.length - t.head));
      },
      append: (items) => {
        const t = this.topic(name);
        if (t.consumers.length === 0) return void this.store!.released(name); // its consumers left meanwhile
        this.hold(t, true);
        for (const [json, clientId, ref] of items) {
          t.items.push(json);
          t.clients.push(clientId);
          t.refs.push(ref);
          this.heldRefs.add(ref);
        }
        this.drain(name, t);
      },
      holds: (ref) => this.heldRefs.has(ref),
    };
  }

  /** Stops `consumer` on `names`; what it has in flight stays its own until it settles it. */
  cancel(consumer: Consumer, names: Iterable<string>): void {
    for (const name of names) {
      const t = this.topics.get(name);
      const i = t ? t.consumers.indexOf(consumer) : -1;
      if (i < 0) continue;
      t!.consumers.splice(i, 1);
      if (t!.consumers.length === 0) this.release(name, t!);
      this.settleTopic(name, t!);
    }
  }

  /**
   * A durable topic without consumers here lets go of its waiting items: they stay pending in the store,
   * so another engine can take them instead of this one keeping copies it would deliver later as well.
   */
  private release(name: string, t: Topic): void {
    if (!this.store) return;
    for (let i = t.head; i < t.items.length; i++) this.heldRefs.delete(t.refs[i]!);
    t.head = t.items.length;
    this.store.released(name);
  }

  /** Hands waiting items to consumers until none is left or no consumer takes more. */
  drain(name: string, t = this.topics.get(name)): void {
    if (!t) return;
    while (t.head < t.items.length && this.handOver(name, t, t.items[t.head]!, t.clients[t.head]!, t.refs[t.head]!)) t.head++;
    if (t.head === t.items.length) {
      this.settleTopic(name, t);
    } else if (t.head > 1024 && t.head * 2 > t.items.length) {
      t.items = t.items.slice(t.head);
      t.clients = t.clients.slice(t.head);
      t.refs = t.refs.slice(t.head);
      t.head = 0;
    }
  }

  /** Items of topic `name` that a consumer had in flight were acknowledged (or confirmed read): their refs. */
  settled(name: string, refs: string[]): void {
    const t = this.topics.get(name);
    if (!t) return;
    t.inflight -= refs.length;
    if (this.store) {
      for (const ref of refs) this.heldRefs.delete(ref);
      this.store.settled(name, refs);
    }
    this.settleTopic(name, t);
  }

  /**
   * Items a consumer had in flight go back to the head of their topic, in their order, for the next consumer
   * (at-least-once: the consumer may have seen them). They may take the topic past topicSize and maxTopics:
   * they were queued once already.
   */
  requeue(name: string, items: Item[]): void {
    const t = this.topics.get(name);
    if (!t) return;
    t.inflight -= items.length;
    this.restore(name, items);
    this.redelivered += items.length;
    if (t.consumers.length === 0) this.release(name, t);
    this.drain(name, t);
  }

  /** Items a consumer had in flight are lost: counted in the dropped metric (the consumer logs them). */
  dropped(name: string, refs: string[], reason: string): void {
    this.drops.add(name, reason, refs.length);
    this.settled(name, refs);
  }

  /** Every topic with its waiting items, items in flight and consumer count (metrics, the console). */
  list(): { topic: string; items: number; inflight: number; consumers: number }[] {
    return [...this.topics].map(([topic, t]) => ({ topic, items: t.items.length - t.head, inflight: t.inflight, consumers: t.consumers.length }));
  }

  /** Removes up to `max` waiting items from the head of topic `name` (a handover or a shutdown moves them). */
  take(name: string, max: number): Item[] {
    const t = this.topics.get(name);
    if (!t) return [];
    const end = Math.min(t.items.length, t.head + max);
    const out: Item[] = [];
    for (let i = t.head; i < end; i++) out.push([t.items[i]!, t.clients[i]!, t.refs[i]!]);
    t.head = end;
    this.drain(name, t);
    return out;
  }

  /** Puts items back at the head of topic `name`, in their order (ones that could not be moved). */
  restore(name: string, items: Item[]): void {
    if (items.length === 0) return;
    const t = this.topic(name);
    this.hold(t, true);
    t.items.splice(t.head, 0, ...items.map((i) => i[0]));
    t.clients.splice(t.head, 0, ...items.map((i) => i[1]));
    t.refs.splice(t.head, 0, ...items.map((i) => i[2]));
  }

  /** Items waiting in topic `name`. */
  size(name: string): number {
    const t = this.topics.get(name);
    return t ? t.items.length - t.head : 0;
  }

  /** Items waiting in every topic. */
  waiting(): number {
    let n = 0;
    for (const t of this.topics.values()) n += t.items.length - t.head;
    return n;
  }
}
