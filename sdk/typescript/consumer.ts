// A queue consumer across every engine: pops its topics on each engine connection (again after each
// reconnect) and runs the handler for each item, at most `concurrency` at a time per engine, in arrival
// order when concurrency is 1.
//
// Acknowledgements: with `ack` (default "auto") the pop asks for acknowledged delivery ("ack":true,
// "w":window); an engine that offers it tags items with "k", and each item is acknowledged (queue.ack)
// once its handler settled, so an item whose handler never finished (the process died) is delivered
// again: at-least-once. An engine that does not offer it sends items without "k"; they are handled the
// same way, unacknowledged.
// Backpressure: when `window` items of one engine wait or run, the consumer stops that engine's delivery
// (queue.unpop without acks; with acks the engine itself sends no more than `window`) and resumes it
// (queue.pop) once half of them are done. What waits meanwhile stays in the engine's queue.
import type { QueueItem } from "../../src/api/protocol.ts";
import type { Engine } from "./engine.ts";

export interface ConsumerOptions {
  /** Ask for acknowledged delivery: true, false, or "auto" (ask; use it where the engine offers it). */
  ack?: boolean | "auto";
  /** Items of one engine waiting or running before its delivery is paused. Default 64. */
  window?: number;
  /** Handlers running at once per engine. Default 1 (in order). */
  concurrency?: number;
  /** A handler threw or rejected (the item still counts as handled and is acknowledged). */
  onError?: (error: unknown, item: QueueItem) => void;
}

interface PerEngine {
  waiting: QueueItem[];
  running: number;
  paused: boolean;
  /** Keys to acknowledge in the next queue.ack. */
  acks: string[];
  ackScheduled: boolean;
}

export class Consumer<D = unknown> {
  private readonly engines = new Map<Engine, PerEngine>();
  private readonly window: number;
  private readonly concurrency: number;
  private readonly ack: boolean;
  private stopped = false;
  /** Items handled (handler settled), failed (handler threw) and acknowledged, for monitoring and tests. */
  readonly stats = { handled: 0, failed: 0, acked: 0, paused: 0 };

  constructor(
    readonly topics: string[],
    private readonly handler: (item: QueueItem<D>) => unknown,
    private readonly opts: ConsumerOptions,
    private readonly forget: (c: Consumer<D>) => void,
  ) {
    this.window = Math.max(1, opts.window ?? 64);
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.ack = opts.ack !== false;
  }

  private state(engine: Engine): PerEngine {
    let s = this.engines.get(engine);
    if (!s) this.engines.set(engine, (s = { waiting: [], running: 0, paused: false, acks: [], ackScheduled: false }));
    return s;
  }

  /** The engine's connection (re)opened: pop the topics there. */
  attach(engine: Engine): void {
    if (this.stopped) return;
    const s = this.state(engine);
    s.waiting = []; // items of the old connection: unacknowledged ones come again, others were lost with it
    s.running = 0;
    s.paused = false;
    s.acks = [];
    this.pop(engine);
  }

  detach(engine: Engine): void {
    this.engines.delete(engine);
  }

  private pop(engine: Engine): void {
    const p = this.ack ? { t: this.topics, ack: true, w: this.window } : { t: this.topics };
    engine.request("queue.pop", p).catch((e) => this.opts.onError?.(e, { n: engine.node.index, c: "0", t: this.topics.join(","), d: null }));
  }

  /** An item arrived from `engine`: queue it, run what the concurrency allows, pause when the window is full. */
  deliver(item: QueueItem, engine: Engine): void {
    if (!this.topics.includes(item.t) || this.stopped) return;
    const s = this.state(engine);
    s.waiting.push(item);
    if (!s.paused && item.k === undefined && s.waiting.length + s.running >= this.window) {
      s.paused = true;
      this.stats.paused++;
      engine.request("queue.unpop", {}).catch(() => {});
    }
    this.run(engine, s);
  }

  private run(engine: Engine, s: PerEngine): void {
    while (s.running < this.concurrency && s.waiting.length > 0) {
      const item = s.waiting.shift()!;
      s.running++;
      Promise.resolve()
        .then(() => this.handler(item as QueueItem<D>))
        .catch((e) => {
          this.stats.failed++;
          this.opts.onError?.(e, item);
        })
        .finally(() => this.done(engine, s, item));
    }
  }

  private done(engine: Engine, s: PerEngine, item: QueueItem): void {
    if (this.engines.get(engine) !== s) return; // from a connection that is gone
    s.running--;
    this.stats.handled++;
    if (item.k !== undefined) this.acknowledge(engine, s, item.k);
    if (s.paused && s.waiting.length + s.running <= this.window / 2 && !this.stopped) {
      s.paused = false;
      this.pop(engine);
    }
    this.run(engine, s);
  }

  /** Acknowledgements go out in batches: one queue.ack per engine per turn of the event loop. */
  private acknowledge(engine: Engine, s: PerEngine, key: string): void {
    s.acks.push(key);
    if (s.ackScheduled) return;
    s.ackScheduled = true;
    setTimeout(() => {
      s.ackScheduled = false;
      const k = s.acks.splice(0);
      if (k.length === 0 || this.engines.get(engine) !== s) return;
      engine.request("queue.ack", { k }).then(
        () => (this.stats.acked += k.length),
        (e) => this.opts.onError?.(e, { n: engine.node.index, c: "0", t: "", d: null, k: k[0] }),
      );
    }, 0);
  }

  /** Stops consuming on every engine (queue.unpop); items not yet handled stay queued there. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.forget(this);
    await Promise.all([...this.engines.keys()].map((e) => e.request("queue.unpop", {}).catch(() => {})));
    this.engines.clear();
  }
}
