import type { Metric, Registry } from 'prom-client';

/**
 * A counter and a histogram for the session hot path, served by any prom-client Registry exactly as
 * prom-client's own Counter and Histogram are (same text, same JSON, same cluster aggregation).
 *
 * Why not prom-client's: its `labels()` child still hashes, allocates and validates the label object
 * on every `inc()`/`observe()`, about 0.7 µs for one store call's pair, on every request. Here a label
 * set is bound once to a series, and recording adds to numbers; the labelled objects are made only
 * when the registry is scraped.
 */
abstract class BoundMetric<L extends string, S> {
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'histogram';
  readonly #labelNames: readonly L[];
  readonly #series = new Map<string, S>();
  readonly #labelsOf = new Map<S, Readonly<Record<L, string>>>();

  constructor(
    /** Assigned by prom-client when it serves OpenMetrics (the `_total` suffix), so not readonly. */
    public name: string,
    readonly help: string,
    labelNames: readonly L[],
    registers: readonly Registry[],
  ) {
    this.#labelNames = labelNames;
    // The registry consumes any object with this shape: name, help, type, aggregator, get(), reset().
    for (const registry of registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The series for one label set, made on first use so the exposition lists only what happened. */
  series(labels: Readonly<Record<L, string>>): S {
    const key = this.#labelNames.map((n) => labels[n]).join('\u0000');
    let s = this.#series.get(key);
    if (s === undefined) {
      s = this.newSeries();
      this.#series.set(key, s);
      this.#labelsOf.set(s, Object.freeze({ ...labels }));
    }
    return s;
  }

  /** Forgets every series, as prom-client's `reset()` does (Registry.resetMetrics). */
  reset(): void {
    this.#series.clear();
    this.#labelsOf.clear();
  }

  protected abstract newSeries(): S;

  protected entries(): Iterable<[S, Readonly<Record<L, string>>]> {
    return this.#labelsOf.entries();
  }
}

export class CounterSeries {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/** A counter whose label sets are bound once: `counter.series({ op: 'load' }).inc()`. */
export class BoundCounter<L extends string> extends BoundMetric<L, CounterSeries> {
  readonly type = 'counter';

  protected newSeries(): CounterSeries {
    return new CounterSeries();
  }

  async get() {
    const values = [];
    for (const [s, labels] of this.entries()) values.push({ value: s.value, labels: { ...labels } });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class HistogramSeries {
  /** Observations per bucket, not cumulative; the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: Float64Array;

  constructor(bounds: Float64Array) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    (this.counts[i] as number)++;
    this.sum += value;
    this.count++;
  }
}

/** A histogram whose label sets are bound once: `histogram.series({ op: 'load' }).observe(seconds)`. */
export class BoundHistogram<L extends string> extends BoundMetric<L, HistogramSeries> {
  readonly type = 'histogram';
  readonly #bounds: Float64Array;

  constructor(
    name: string,
    help: string,
    labelNames: readonly L[],
    buckets: readonly number[],
    registers: readonly Registry[],
  ) {
    super(name, help, labelNames, registers);
    this.#bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
  }

  protected newSeries(): HistogramSeries {
    return new HistogramSeries(this.#bounds);
  }

  /** prom-client's Histogram.get() shape: cumulative `_bucket`s with `le` first, then `+Inf`, `_sum`, `_count`. */
  async get() {
    const values = [];
    const bucket = `${this.name}_bucket`;
    for (const [s, labels] of this.entries()) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.counts[i] as number;
        values.push({
          labels: { le: this.#bounds[i] as number, ...labels },
          value: acc,
          metricName: bucket,
          exemplar: null,
        });
      }
      values.push(
        { labels: { le: '+Inf', ...labels }, value: s.count, metricName: bucket, exemplar: null },
        { labels: { ...labels }, value: s.sum, metricName: `${this.name}_sum` },
        { labels: { ...labels }, value: s.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
