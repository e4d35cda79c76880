/**
 * A latency histogram that load-generator processes fill and the driver merges:
 * fixed 0.05 ms buckets up to 2 s (what realtime latencies need), one overflow
 * bucket above that. Crosses process boundaries as sparse [bucket, count] pairs.
 */
const RESOLUTION_MS = 0.05;
const BUCKETS = 40_000; // 2,000 ms

export interface LatencyStats {
  count: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** The wire form: non-empty buckets only, plus the exact maximum and sum. */
export interface HistogramData {
  buckets: Array<[number, number]>;
  maxMs: number;
  sumMs: number;
}

export class Histogram {
  readonly #counts = new Uint32Array(BUCKETS + 1);
  #max = 0;
  #sum = 0;
  #count = 0;

  record(ms: number): void {
    const v = Math.max(ms, 0);
    const b = Math.min(BUCKETS, Math.floor(v / RESOLUTION_MS));
    this.#counts[b] = (this.#counts[b] ?? 0) + 1;
    if (v > this.#max) this.#max = v;
    this.#sum += v;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#max = 0;
    this.#sum = 0;
    this.#count = 0;
  }

  toData(): HistogramData {
    const buckets: Array<[number, number]> = [];
    this.#counts.forEach((n, b) => {
      if (n > 0) buckets.push([b, n]);
    });
    return { buckets, maxMs: this.#max, sumMs: this.#sum };
  }

  add(data: HistogramData): void {
    for (const [b, n] of data.buckets) {
      this.#counts[b] = (this.#counts[b] ?? 0) + n;
      this.#count += n;
    }
    this.#max = Math.max(this.#max, data.maxMs);
    this.#sum += data.sumMs;
  }

  /** The upper edge of the bucket holding the q-quantile (never above the exact maximum). */
  quantile(q: number): number {
    if (this.#count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let b = 0; b <= BUCKETS; b++) {
      seen += this.#counts[b] ?? 0;
      if (seen >= rank) return Math.min(this.#max, (b + 1) * RESOLUTION_MS);
    }
    return this.#max;
  }

  stats(): LatencyStats {
    return {
      count: this.#count,
      meanMs: this.#count ? this.#sum / this.#count : Number.NaN,
      p50Ms: this.quantile(0.5),
      p90Ms: this.quantile(0.9),
      p99Ms: this.quantile(0.99),
      maxMs: this.#count ? this.#max : Number.NaN,
    };
  }
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Percentiles of a plain list of numbers (small samples: per-client resume times, lags). */
export function percentiles(values: number[]): { count: number; p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  return {
    count: sorted.length,
    p50: at(0.5) ?? Number.NaN,
    p99: at(0.99) ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}
