// Counts of queue items dropped, by topic and reason, for connmix_engine_queue_dropped_total. Topic names
// come from scripts, so the series are bounded: past MAX_SERIES new topics are counted under topic "(other)".
import { escapeText } from "../log/escape";

const MAX_SERIES = 1000;
const OTHER = "(other)";

export class DropCounts {
  private readonly counts = new Map<string, [topic: string, reason: string, n: number]>();

  add(topic: string, reason: string, n: number): void {
    if (n <= 0) return;
    let key = topic + "\0" + reason;
    let entry = this.counts.get(key);
    if (!entry && this.counts.size >= MAX_SERIES) {
      key = OTHER + "\0" + reason;
      entry = this.counts.get(key);
      topic = OTHER;
    }
    if (entry) entry[2] += n;
    else this.counts.set(key, [topic, reason, n]);
  }

  /** [topic, reason, count] of every series. */
  all(): [string, string, number][] {
    return [...this.counts.values()];
  }

  total(): number {
    let n = 0;
    for (const [, , c] of this.counts.values()) n += c;
    return n;
  }
}

/** `topic: n, ...` for a log line. Topic names come from scripts, which may take them from clients: escaped. */
export function topicCounts(list: Iterable<readonly [topic: string, n: number]>): string {
  return Array.from(list, ([t, n]) => `${escapeText(t)}: ${n}`).join(", ");
}
