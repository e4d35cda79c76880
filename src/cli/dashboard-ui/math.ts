/**
 * Rates and quantiles from two scrapes of Prometheus counters and histograms.
 * The dashboard page runs these in the browser (a module it imports). Computing in
 * the browser keeps the server stateless: behind a round-robin balancer each
 * poll may be answered by another node, and raw counters are the same whoever
 * scraped them.
 */

/** A histogram as scraped: `[le, cumulative count]`, le as Prometheus writes it ("0.005", "+Inf"). */
export type Buckets = Array<[string, number]>;

/** Increase of a counter between two scrapes; a lower value means the process restarted (counting from 0). */
export function counterIncrease(previous: number | undefined, current: number): number {
  if (previous === undefined) return 0;
  return current >= previous ? current - previous : current;
}

/** Per-bucket increase; a restart (any bucket went down) counts the new process's buckets whole. */
export function bucketIncrease(previous: Buckets | undefined, current: Buckets): Buckets {
  if (!previous) return current.map(([le]) => [le, 0]);
  const before = new Map(previous);
  const reset = current.some(([le, n]) => n < (before.get(le) ?? 0));
  return current.map(([le, n]) => [le, reset ? n : n - (before.get(le) ?? 0)]);
}

/** Sums histograms of several nodes bucket by bucket (same bucket bounds: same metric definition). */
export function mergeBuckets(list: Buckets[]): Buckets {
  const sum = new Map<string, number>();
  for (const buckets of list) for (const [le, n] of buckets) sum.set(le, (sum.get(le) ?? 0) + n);
  const bound = (le: string) => (le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le));
  return [...sum.entries()].sort((a, b) => bound(a[0]) - bound(b[0]));
}

/**
 * The q-quantile of cumulative buckets, interpolated linearly inside the bucket
 * the rank falls in (as Prometheus' histogram_quantile does). null when empty.
 */
export function histogramQuantile(q: number, buckets: Buckets): number | null {
  const bound = (le: string) => (le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le));
  const sorted = [...buckets].sort((a, b) => bound(a[0]) - bound(b[0]));
  const last = sorted[sorted.length - 1];
  if (!last || last[1] <= 0) return null;
  const rank = q * last[1];
  let lower = 0;
  let below = 0;
  for (const [le, count] of sorted) {
    const upper = bound(le);
    if (count >= rank) {
      // Past the highest finite bound there is nothing to interpolate to: report that bound.
      if (upper === Number.POSITIVE_INFINITY) return lower;
      if (count === below) return upper;
      return lower + ((upper - lower) * (rank - below)) / (count - below);
    }
    lower = upper;
    below = count;
  }
  return lower;
}
