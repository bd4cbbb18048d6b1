// A small Prometheus registry: counters, gauges and summaries rendered in the text exposition format
// (version 0.0.4). Metrics either hold their own values (inc/set) or read them when scraped (a function),
// so hot paths can keep plain counters of their own and pay nothing extra. Used by the engine and center.
import { Summary, type SummaryWindow } from "./summary";
import { formatValue, header, labelText } from "./format";

export { CONTENT_TYPE } from "./format";

export type Sample = [labelValues: string[], value: number];
/** Reads a metric's current samples at scrape time. */
export type Reader = () => Sample[];

export interface Metric {
  readonly name: string;
  /** Appends the metric's HELP, TYPE and sample lines. */
  render(out: string[]): void;
}

/** A counter or gauge: values kept per label set, or read from `reader` at scrape time. */
export class Scalar implements Metric {
  private readonly values = new Map<string, { labels: string[]; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
    readonly labelNames: readonly string[] = [],
    private readonly reader?: Reader,
  ) {}

  private slot(labels: string[]) {
    const key = labels.join("\u0000");
    let s = this.values.get(key);
    if (!s) this.values.set(key, (s = { labels, value: 0 }));
    return s;
  }

  inc(by = 1, labels: string[] = []): void {
    if (this.type === "counter" && by < 0) throw new Error(`counter ${this.name} cannot decrease`);
    this.slot(labels).value += by;
  }

  set(value: number, labels: string[] = []): void {
    if (this.type === "counter") throw new Error(`counter ${this.name} cannot be set`);
    this.slot(labels).value = value;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, this.type);
    const samples: Sample[] = this.reader ? this.reader() : [...this.values.values()].map((s) => [s.labels, s.value]);
    for (const [labels, value] of samples) out.push(`${this.name}${labelText(this.labelNames, labels)} ${formatValue(value)}`);
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();

  add<M extends Metric>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  counter(name: string, help: string, labelNames: readonly string[] = [], reader?: Reader): Scalar {
    return this.add(new Scalar(name, help, "counter", labelNames, reader));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = [], reader?: Reader): Scalar {
    return this.add(new Scalar(name, help, "gauge", labelNames, reader));
  }

  summary(name: string, help: string, labelNames: readonly string[], window: SummaryWindow): Summary {
    return this.add(new Summary(name, help, labelNames, window));
  }

  /** The whole registry in the text format, metrics in registration order. */
  text(): string {
    const out: string[] = [];
    for (const m of this.metrics.values()) m.render(out);
    return out.join("\n") + "\n";
  }
}
