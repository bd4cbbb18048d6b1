// A draining engine's queue items go to its successor, where backends consume from now on: each item is a
// QUEUE request over the mesh link to the successor (the request a worker uses to hand items to its
// primary). Items still pushed by the clients the engine holds are moved as they come. An item the
// successor refuses (a full topic, the link down) goes back to the head of its topic and is tried again;
// whatever is left when the engine exits is logged with its count per topic.
import { log } from "../log/logger";
import type { PeerLink } from "../mesh/link";
import { queueOver } from "../mesh/requests";
import type { Queues } from "../queue/queues";

const TICK_MS = 50;
/** Items in flight per topic at a time: bounded, so a slow successor is not flooded. */
const BATCH = 256;

export class QueueMover {
  moved = 0;
  private busy: Promise<void> | null = null;
  private lastError = "";
  private readonly timer: Timer;

  constructor(private readonly queues: Queues, private readonly link: () => PeerLink | undefined) {
    this.timer = setInterval(() => void this.pass(), TICK_MS);
  }

  /** One round over every topic; resolves with the round. */
  private pass(): Promise<void> {
    this.busy ??= this.round().finally(() => (this.busy = null));
    return this.busy;
  }

  private async round(): Promise<void> {
    const link = this.link();
    if (!link) return;
    for (const { topic } of this.queues.list()) {
      const items = this.queues.take(topic, BATCH);
      if (items.length === 0) continue;
      const results = await Promise.all(items.map(([json, client]) => queueOver(link, topic, json, client)));
      const refused = items.filter((_, i) => results[i]![1] !== null);
      this.moved += items.length - refused.length;
      if (refused.length > 0) {
        this.lastError = results.find((r) => r[1] !== null)![1]!;
        this.queues.restore(topic, refused);
      }
    }
  }

  /** Moves what is left, for at most `ms`; then logs what could not be moved. */
  async finish(ms: number): Promise<void> {
    clearInterval(this.timer);
    const deadline = performance.now() + ms;
    while (this.link() && this.left() > 0 && performance.now() < deadline) {
      await this.pass();
      if (this.left() > 0) await Bun.sleep(TICK_MS);
    }
    const left = this.queues.list().filter((t) => t.items > 0);
    if (this.moved > 0) log.info(`drain: ${this.moved} queue items handed to the successor`);
    if (left.length > 0) {
      const list = left.map((t) => `${t.topic}: ${t.items}`).join(", ");
      log.error(`drain: queue items left here and lost (${this.lastError || (this.link() ? "not moved in time" : "no successor to hand them to")}): ${list}`);
    }
  }

  private left(): number {
    return this.queues.list().reduce((n, t) => n + t.items, 0);
  }
}
