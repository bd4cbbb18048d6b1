// A small Prometheus registry: counters, gauges and summaries rendered in the text exposition format
// (version 0.0.4). Counters and gauges are read when scraped (a function over the owner's plain numbers),
// so hot paths pay nothing extra; summaries are observed. Used by the engine and the center.
import { Summary, type SummaryWindow } from "./summary";
import { formatValue, header, labelText } from "./format";

export { CONTENT_TYPE } from "./format";

export type Sample = [labelValues: string[], value: number];
/** Reads a metric's current samples at scrape time. */
export type Reader = () => Sample[];

/** The Reader of a metric without labels. */
export const unlabeled = (read: () => number): Reader => () => [[[], read()]];

export interface Metric {
  readonly name: string;
  /** Appends the metric's HELP, TYPE and sample lines. */
  render(out: string[]): void;
}

/** A counter or gauge whose samples are read when scraped. */
export class Scalar implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
    readonly labelNames: readonly string[],
    private readonly read: Reader,
  ) {}

  render(out: string[]): void {
    header(out, this.name, this.help, this.type);
    for (const [labels, value] of this.read()) out.push(`${this.name}${labelText(this.labelNames, labels)} ${formatValue(value)}`);
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();

  add<M extends Metric>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  counter(name: string, help: string, labelNames: readonly string[], read: Reader): Scalar {
    return this.add(new Scalar(name, help, "counter", labelNames, read));
  }

  gauge(name: string, help: string, labelNames: readonly string[], read: Reader): Scalar {
    return this.add(new Scalar(name, help, "gauge", labelNames, read));
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
