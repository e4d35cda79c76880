import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BoundCounter, BoundHistogram } from '../../src/core/bound-metrics.js';

/**
 * The bound counter and histogram against prom-client's own, fed the same values: a scraper (text or
 * OpenMetrics), getMetricsAsJSON and a cluster's AggregatorRegistry must not tell them apart.
 */
const BUCKETS = [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

function both(openMetrics = false) {
  const theirs = new Registry();
  const ours = new Registry();
  if (openMetrics) for (const r of [theirs, ours]) r.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
  const help = 'store calls';
  return {
    theirs,
    ours,
    theirCounter: new Counter({ name: 'calls_total', help, labelNames: ['op', 'outcome'], registers: [theirs] }),
    ourCounter: new BoundCounter('calls_total', help, ['op', 'outcome'], [ours]),
    theirHistogram: new Histogram({
      name: 'latency_seconds',
      help: 'latency',
      labelNames: ['op'],
      buckets: BUCKETS,
      registers: [theirs],
    }),
    ourHistogram: new BoundHistogram('latency_seconds', 'latency', ['op'], BUCKETS, [ours]),
  };
}

/** Values on and between the bounds, below the first and above the last, for two operations. */
function feed(m: ReturnType<typeof both>, seed: number): void {
  const values = [0, 0.0002, 0.00021, 0.001, 0.0049, 0.25, 0.9999, 1, 1.5, 30, 0.0004 * seed];
  for (const [i, v] of values.entries()) {
    const op = i % 3 === 0 ? 'commit' : 'load';
    const outcome = i % 4 === 0 ? 'error' : 'ok';
    m.theirHistogram.observe({ op }, v);
    m.ourHistogram.series({ op }).observe(v);
    m.theirCounter.inc({ op, outcome });
    m.ourCounter.series({ op, outcome }).inc();
  }
  m.theirCounter.inc({ op: 'claimEnded', outcome: 'ok' }, 5);
  m.ourCounter.series({ op: 'claimEnded', outcome: 'ok' }).inc(5);
}

describe('bound metrics', () => {
  it('write the same Prometheus text as prom-client for the same observations', async () => {
    const m = both();
    expect(await m.ours.metrics()).toBe(await m.theirs.metrics()); // nothing observed: HELP and TYPE only
    feed(m, 1);
    const text = await m.ours.metrics();
    expect(text).toBe(await m.theirs.metrics());
    expect(text).toContain('latency_seconds_bucket{le="0.0002",op="commit"} 1');
    expect(text).toContain('calls_total{op="claimEnded",outcome="ok"} 5');
  });

  it('write the same OpenMetrics text and the same JSON', async () => {
    const m = both(true);
    feed(m, 2);
    const text = await m.ours.metrics();
    expect(text).toMatch(/^calls_total\{op="load",outcome="error"\} 2$/m);
    expect(text).toMatch(/# EOF\n$/);
    expect(text).toBe(await m.theirs.metrics());
    expect(await m.ours.getMetricsAsJSON()).toEqual(await m.theirs.getMetricsAsJSON());
  });

  it('aggregate across cluster workers as prom-client does, and reset with the registry', async () => {
    const workers = [both(), both()];
    for (const [i, w] of workers.entries()) feed(w, i + 3);
    const theirs = AggregatorRegistry.aggregate(await Promise.all(workers.map((w) => w.theirs.getMetricsAsJSON())));
    const ours = AggregatorRegistry.aggregate(await Promise.all(workers.map((w) => w.ours.getMetricsAsJSON())));
    expect(await ours.metrics()).toBe(await theirs.metrics());
    const [w] = workers;
    w?.ours.resetMetrics();
    w?.theirs.resetMetrics();
    expect(await w?.ours.metrics()).toBe(await w?.theirs.metrics());
  });

  it('refuse a second metric of the same name in a registry, as prom-client does', () => {
    const registry = new Registry();
    new BoundCounter('twice_total', 'h', [], [registry]);
    expect(() => new Counter({ name: 'twice_total', help: 'h', registers: [registry] })).toThrow(
      /already been registered/,
    );
  });
});
