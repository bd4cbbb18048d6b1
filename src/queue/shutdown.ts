// What a stopping engine (SIGINT/SIGTERM) does with its queues. The Lua servers stop first, so nothing new
// is pushed; then the connected consumers get up to shutdownTimeout seconds to take what is queued and settle
// what they have in flight; then the API server closes them (their unacknowledged items come back to their
// topics), and whatever is left is counted and logged: dropped (reason "shutdown") when the queues live in
// memory, kept when they live in Redis.
import { log } from "../log/logger";
import type { Queues } from "./queues";
import { topicCounts } from "./drops";

const POLL_MS = 20;

export class QueueShutdown {
  constructor(private readonly queues: Queues, private readonly timeoutSeconds: number) {}

  /** Budget of the drain, for the shutdown hook. */
  get ms(): number {
    return this.timeoutSeconds * 1000;
  }

  /** Waits until the consumed topics are empty and nothing is in flight, or the timeout. */
  async drain(): Promise<void> {
    const busy = () => this.queues.list().some((t) => (t.consumers > 0 && t.items > 0) || t.inflight > 0);
    if (!busy()) return;
    const waiting = this.queues.waiting();
    log.info(`shutdown: ${waiting} queue items waiting, consumers get up to ${this.timeoutSeconds}s to take them`);
    const deadline = performance.now() + this.ms;
    while (busy() && performance.now() < deadline) await Bun.sleep(POLL_MS);
  }

  /** Once the consumers are gone: logs (and in memory counts as dropped) the items left. */
  async report(): Promise<void> {
    if (this.queues.durable) {
      let left: [string, number][];
      try {
        left = await this.queues.durableBacklog();
      } catch (e) {
        return void log.warn(`shutdown: cannot count the queue items in Redis (${(e as Error).message}); they stay there`);
      }
      const total = left.reduce((n, t) => n + t[1], 0);
      const list = topicCounts(left);
      return void log.info(total === 0 ? "shutdown: no queue item left in Redis" : `shutdown: ${total} queue items not yet acknowledged, kept in Redis (${list})`);
    }
    const left = this.queues.list().filter((t) => t.items > 0);
    if (left.length === 0) return void log.info("shutdown: no queue item left");
    const total = left.reduce((n, t) => n + t.items, 0);
    const list = topicCounts(left.map((t) => [t.topic, t.items] as const));
    for (const t of left) this.queues.drops.add(t.topic, "shutdown", t.items);
    log.warn(`shutdown: ${total} queue items left in memory, dropped (${list})`);
  }
}
