/**
 * A Prometheus histogram with one label, for observations made per event.
 *
 * prom-client's `Histogram` child builds a label/value object, validates the labels and hashes them
 * on every `observe` (1.75 % of the daemon's CPU in bench row 1, plus the garbage). Here a child is a
 * plain array of bucket counts bound to its label value once; `observe` is a bucket search and three
 * additions. The registry reads it through the metric interface prom-client's own classes implement
 * (`get`, `getForPromString`, `reset`), with the same values in the same order, so `/metrics` is
 * byte for byte what a prom-client `Histogram` prints (`test/unit/observability/route-histogram.test.ts`).
 */
import type { Registry } from "./prom.js";

/** What a route records into: the value in seconds. */
export interface HistogramChild {
  observe(value: number): void;
}

interface Series {
  readonly labelValue: string;
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

interface Value {
  readonly labels: Record<string, string | number>;
  readonly sharedLabels: Record<string, string>;
  readonly value: number;
  readonly metricName: string;
  /** Always empty (no exemplars): `null` on buckets, `undefined` on sum and count, as prom-client has it. */
  readonly exemplar: null | undefined;
}

export interface RouteHistogramOptions {
  readonly name: string;
  readonly help: string;
  readonly labelName: string;
  /** Upper bounds, ascending. */
  readonly buckets: readonly number[];
  readonly registers: readonly Registry[];
}

export class RouteHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly labelName: string;
  private readonly bounds: readonly number[];
  private series = new Map<string, Series>();

  constructor(opts: RouteHistogramOptions) {
    this.name = opts.name;
    this.help = opts.help;
    this.labelName = opts.labelName;
    this.bounds = [...opts.buckets];
    for (const r of opts.registers) r.registerMetric(this as never);
  }

  /** The child for one label value, created (at zero) on first use and kept until `reset`. */
  labels(labelValue: string): HistogramChild {
    let s = this.series.get(labelValue);
    if (s === undefined) {
      s = { labelValue, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.series.set(labelValue, s);
    }
    const series = s;
    const bounds = this.bounds;
    return {
      observe: (value: number) => {
        if (!Number.isFinite(value)) return;
        let i = 0;
        while (i < bounds.length && value > bounds[i]!) i++;
        series.counts[i]!++;
        series.sum += value;
        series.count++;
      },
    };
  }

  /** Forgets every series (prom-client's `Registry.resetMetrics`). Children already handed out keep counting into the old ones. */
  reset(): void {
    this.series = new Map();
  }

  /** The values as prom-client's `Histogram.getForPromString` gives them: buckets, `+Inf`, sum, count per series. */
  getForPromString(): Promise<{ name: string; help: string; type: string; values: Value[]; aggregator: string }> {
    const values: Value[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      const shared = { [this.labelName]: s.labelValue };
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels: shared, value: acc, metricName: bucketName, exemplar: null });
      }
      values.push({ labels: { le: "+Inf" }, sharedLabels: shared, value: s.count, metricName: bucketName, exemplar: null });
      values.push({ labels: {}, sharedLabels: shared, value: s.sum, metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: shared, value: s.count, metricName: `${this.name}_count`, exemplar: undefined });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /** The values with each series' label merged in, as prom-client's `Histogram.get` gives them (JSON form). */
  async get(): Promise<{ name: string; help: string; type: string; values: Omit<Value, "sharedLabels">[]; aggregator: string }> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ sharedLabels, ...v }) => ({ ...v, labels: { ...v.labels, ...sharedLabels } })) };
  }
}
