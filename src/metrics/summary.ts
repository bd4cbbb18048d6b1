// Summaries with a sliding time window (spec §7, `prometheus.summary`), as client_golang defines them:
// quantiles describe the last `maxAge` seconds, kept as `ageBuckets` buckets that expire one at a time;
// _sum and _count cover the whole life of the process. A bucket keeps at most `bufCap` observations
// (a uniform reservoir sample beyond that), so memory is fixed and observe() never allocates.
import { formatValue, header, labelText } from "./format";
import type { Metric } from "./registry";

export interface SummaryWindow {
  maxAge: number; // seconds
  ageBuckets: number;
  bufCap: number;
}

/** The quantiles connmix's summaries show (its prometheus.md): minimum, quartiles, maximum. */
export const QUANTILES = [0, 0.25, 0.5, 0.75, 1] as const;

interface Bucket {
  values: Float64Array;
  kept: number;
  seen: number;
}

/** One label set of a summary. */
export class SummaryChild {
  count = 0;
  sum = 0;
  private readonly buckets: Bucket[];
  private readonly period: number; // ms per bucket
  private current = 0;
  private rotateAt: number;

  constructor(window: SummaryWindow, private readonly now: () => number = performance.now.bind(performance)) {
    const n = Math.max(1, Math.floor(window.ageBuckets));
    const cap = Math.max(1, Math.floor(window.bufCap));
    this.buckets = Array.from({ length: n }, () => ({ values: new Float64Array(cap), kept: 0, seen: 0 }));
    this.period = (window.maxAge * 1000) / n;
    this.rotateAt = this.now() + this.period;
  }

  observe(v: number): void {
    this.count++;
    this.sum += v;
    const t = this.now();
    if (t >= this.rotateAt) this.rotate(t);
    const b = this.buckets[this.current]!;
    b.seen++;
    if (b.kept < b.values.length) b.values[b.kept++] = v;
    else {
      const j = Math.floor(Math.random() * b.seen);
      if (j < b.values.length) b.values[j] = v;
    }
  }

  /** Starts a fresh bucket for each period that has passed, dropping the oldest ones. */
  private rotate(t: number): void {
    const steps = Math.floor((t - this.rotateAt) / this.period) + 1;
    for (let i = 0; i < Math.min(steps, this.buckets.length); i++) {
      this.current = (this.current + 1) % this.buckets.length;
      const b = this.buckets[this.current]!;
      b.kept = 0;
      b.seen = 0;
    }
    this.rotateAt += steps * this.period;
  }

  /** The window's quantiles (NaN when it holds no observation). Each kept value stands for seen/kept. */
  quantiles(qs: readonly number[] = QUANTILES): number[] {
    const t = this.now();
    if (t >= this.rotateAt) this.rotate(t);
    const values: number[] = [];
    const weights: number[] = [];
    let total = 0;
    for (const b of this.buckets) {
      if (b.kept === 0) continue;
      const w = b.seen / b.kept;
      for (let i = 0; i < b.kept; i++) values.push(b.values[i]!), weights.push(w);
      total += b.seen;
    }
    if (values.length === 0) return qs.map(() => NaN);
    const order = values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
    return qs.map((q) => {
      const target = q * total;
      let acc = 0;
      for (const i of order) {
        acc += weights[i]!;
        if (acc >= target) return values[i]!;
      }
      return values[order[order.length - 1]!]!;
    });
  }
}

export class Summary implements Metric {
  private readonly children = new Map<string, { labels: string[]; child: SummaryChild }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly window: SummaryWindow,
    private readonly now?: () => number,
  ) {}

  /** The child for these label values; keep it to observe without a lookup. */
  child(...labels: string[]): SummaryChild {
    const key = labels.join("\u0000");
    let c = this.children.get(key);
    if (!c) this.children.set(key, (c = { labels, child: new SummaryChild(this.window, this.now) }));
    return c.child;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, "summary");
    const names = [...this.labelNames, "quantile"];
    // Every child made so far is shown, an empty one with NaN quantiles, so each series exists from the start.
    for (const { labels, child } of this.children.values()) {
      const qs = child.quantiles();
      QUANTILES.forEach((q, i) => out.push(`${this.name}${labelText(names, [...labels, String(q)])} ${formatValue(qs[i]!)}`));
      const plain = labelText(this.labelNames, labels);
      out.push(`${this.name}_sum${plain} ${formatValue(child.sum)}`, `${this.name}_count${plain} ${child.count}`);
    }
  }
}
