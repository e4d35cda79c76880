import { performance } from 'node:perf_hooks';
import type { CounterSeries, HistogramSeries } from '../core/bound-metrics.js';
import type { ShoalMetrics } from '../core/metrics.js';
import { type SessionStore, STORE_OPERATIONS } from './contract.js';

const INSTRUMENTED = Symbol.for('shoal.instrumented');

const TIMED = STORE_OPERATIONS;

/**
 * Wraps a store so every call is counted and timed in `m`
 * (shoal_store_calls_total, shoal_store_latency_seconds), commits that lose a
 * compare-and-swap are counted as conflicts and sweeper claims by reason.
 *
 * Every session request makes one or two store calls, so this runs on the hot path: each
 * operation's series are bound once (on first use, so /metrics lists only series that
 * happened), and a call allocates nothing beyond its handlers on the store's promise. `performance` comes from
 * node:perf_hooks: the global one is an accessor, looked up through a slow path on every call.
 */
export function instrumentStore(store: SessionStore, m: ShoalMetrics): SessionStore {
  if ((store as { [INSTRUMENTED]?: true })[INSTRUMENTED]) return store; // never count a call twice
  const wrapped: SessionStore = Object.create(store);
  Object.defineProperty(wrapped, INSTRUMENTED, { value: true });
  for (const op of TIMED) {
    if (typeof store[op] !== 'function') continue; // an optional capability the store lacks stays absent
    const fn = store[op] as (...args: unknown[]) => Promise<unknown>;
    const series = new OpSeries(m, op);
    const settled = (result: unknown, start: number): void => {
      series.done(start, true);
      if (op === 'commit' && (result as { status?: string }).status === 'conflict') m.sessionConflicts.inc();
      if (op === 'claimEnded')
        for (const e of result as Array<{ reason: string }>) m.sweeperClaims.inc({ reason: e.reason });
    };
    (wrapped as unknown as Record<string, unknown>)[op] = function (this: unknown) {
      const start = performance.now();
      let pending: Promise<unknown>;
      try {
        // `arguments` passed straight on: the optimising compiler forwards it without making an
        // array, which a rest parameter costs on every store call.
        // biome-ignore lint/complexity/noArguments: see above
        pending = fn.apply(store, arguments as unknown as unknown[]);
      } catch (err) {
        series.done(start, false);
        return Promise.reject(err);
      }
      // Timed beside the caller's handlers rather than in front of them: the caller's then() attaches
      // to the store's own promise, not to one more made here, a turn less on every call. Nothing
      // thrown here may reach that promise's chain of its own, unhandled.
      pending.then(
        (result) => {
          try {
            settled(result, start);
          } catch {
            // a result the metrics cannot read is the caller's to see, not a failed call
          }
        },
        () => series.done(start, false),
      );
      return pending;
    };
  }
  return wrapped;
}

/** One operation's latency and outcome series, each bound on first use. */
class OpSeries {
  #latency: HistogramSeries | undefined;
  #ok: CounterSeries | undefined;
  #error: CounterSeries | undefined;
  readonly #m: ShoalMetrics;
  readonly #op: string;

  constructor(m: ShoalMetrics, op: string) {
    this.#m = m;
    this.#op = op;
  }

  done(start: number, ok: boolean): void {
    this.#latency ??= this.#m.storeLatency.series({ op: this.#op });
    this.#latency.observe((performance.now() - start) / 1000);
    if (ok) {
      this.#ok ??= this.#m.storeCalls.series({ op: this.#op, outcome: 'ok' });
      this.#ok.inc();
    } else {
      this.#error ??= this.#m.storeCalls.series({ op: this.#op, outcome: 'error' });
      this.#error.inc();
    }
  }
}
