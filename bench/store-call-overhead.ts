/**
 * What shoal adds around every session store call, in nanoseconds per call: counting and timing it
 * (`instrumentStore`), and bounding it in time. Each variant wraps a store whose `load` answers at
 * once, so only the wrapping is measured; calls are awaited one after another, as a request does.
 * Variants alternate within each round; the table shows the median and range over rounds.
 *
 * - metrics: no metrics / the bound series shoal uses / prom-client's own labelled children
 *   (what instrumentStore used before: `histogram.labels(...).observe()`, `counter.labels(...).inc()`).
 * - deadline: a setTimeout/clearTimeout pair per call / the store's DeadlineQueue.
 *
 * `npx tsx bench/store-call-overhead.ts [--calls 200000] [--rounds 7]`
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Counter, Histogram, Registry } from 'prom-client';
import { DeadlineQueue } from '../src/core/deadlines.js';
import { metrics } from '../src/core/metrics.js';
import type { SessionStore, StoredSession } from '../src/stores/contract.js';
import { instrumentStore } from '../src/stores/instrument.js';
import { table } from './lib/results.js';

const { values } = parseArgs({
  options: { calls: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '7' } },
});
const CALLS = Number(values.calls);
const ROUNDS = Number(values.rounds);
const TIMEOUT_MS = 2000;

const answered: Promise<StoredSession | null> = Promise.resolve(null);
const bare = { kind: 'bench', load: () => answered } as unknown as SessionStore;

/** instrumentStore as it was with prom-client's labelled children, for comparison. */
function promClientChildren(store: SessionStore): SessionStore {
  const registry = new Registry();
  const latency = new Histogram({
    name: 'l',
    help: 'l',
    labelNames: ['op'],
    buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  }).labels({ op: 'load' });
  const ok = new Counter({ name: 'c', help: 'c', labelNames: ['op', 'outcome'], registers: [registry] }).labels({
    op: 'load',
    outcome: 'ok',
  });
  return {
    ...store,
    load(id: string, now: number) {
      const start = performance.now();
      return store.load(id, now).then((r) => {
        latency.observe((performance.now() - start) / 1000);
        ok.inc();
        return r;
      });
    },
  } as SessionStore;
}

/** A call bounded by its own timer, as the Redis store did before DeadlineQueue. */
function timerPerCall(store: SessionStore): SessionStore {
  return {
    ...store,
    load: (id: string, now: number) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no answer')), TIMEOUT_MS);
        store.load(id, now).then((r) => {
          clearTimeout(timer);
          resolve(r);
        }, reject);
      }),
  } as SessionStore;
}

/** The same bounded by the store's shared DeadlineQueue. */
function deadlineQueue(store: SessionStore): SessionStore {
  const deadlines = new DeadlineQueue(TIMEOUT_MS);
  return {
    ...store,
    load: (id: string, now: number) =>
      new Promise((resolve, reject) => {
        const deadline = deadlines.add(() => reject(new Error('no answer')));
        store.load(id, now).then((r) => {
          deadlines.settle(deadline);
          resolve(r);
        }, reject);
      }),
  } as SessionStore;
}

const variants: Array<[group: string, name: string, store: SessionStore]> = [
  ['metrics', 'none', bare],
  ['metrics', 'bound series (instrumentStore)', instrumentStore(bare, metrics(new Registry()))],
  ['metrics', "prom-client's labelled children", promClientChildren(bare)],
  ['deadline', 'none', bare],
  ['deadline', 'setTimeout + clearTimeout per call', timerPerCall(bare)],
  ['deadline', 'DeadlineQueue', deadlineQueue(bare)],
];

async function nsPerCall(store: SessionStore): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < CALLS; i++) await store.load('id', 0);
  return ((performance.now() - start) * 1e6) / CALLS;
}

const samples = variants.map((): number[] => []);
for (const [, , store] of variants) await nsPerCall(store); // warm-up
for (let round = 1; round <= ROUNDS; round++) {
  // Alternate the order, so no variant always runs after the same one.
  const order = variants.map((_, i) => i);
  if (round % 2 === 0) order.reverse();
  for (const i of order) samples[i]?.push(await nsPerCall(variants[i]?.[2] as SessionStore));
  process.stderr.write(`round ${round}/${ROUNDS}\n`);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const rows = variants.map(([group, name], i) => {
  const xs = samples[i] as number[];
  const base = median(samples[group === 'metrics' ? 0 : 3] as number[]);
  return [
    group,
    name,
    `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`,
    (median(xs) - base).toFixed(0),
  ];
});
console.log(
  `\`npx tsx bench/store-call-overhead.ts --calls ${CALLS} --rounds ${ROUNDS}\`, node ${process.version}; ns per awaited store call, median (min–max) over ${ROUNDS} rounds\n`,
);
console.log(table(['what', 'variant', 'ns / call', 'added'], rows));
