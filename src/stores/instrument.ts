import { metrics } from '../core/metrics.js';
import { type SessionStore, STORE_OPERATIONS } from './contract.js';

const INSTRUMENTED = Symbol.for('shoal.instrumented');

const TIMED = STORE_OPERATIONS;

/**
 * Wraps a store so every call is counted and timed in the process metrics
 * (shoal_store_calls_total, shoal_store_latency_seconds), commits that lose a
 * compare-and-swap are counted as conflicts and sweeper claims by reason.
 */
export function instrumentStore(store: SessionStore): SessionStore {
  if ((store as { [INSTRUMENTED]?: true })[INSTRUMENTED]) return store; // never count a call twice
  const m = metrics();
  const wrapped: SessionStore = Object.create(store);
  Object.defineProperty(wrapped, INSTRUMENTED, { value: true });
  for (const op of TIMED) {
    if (typeof store[op] !== 'function') continue; // an optional capability the store lacks stays absent
    const fn = (store[op] as (...args: unknown[]) => Promise<unknown>).bind(store);
    (wrapped as unknown as Record<string, unknown>)[op] = async (...args: unknown[]) => {
      const stop = m.storeLatency.startTimer({ op });
      try {
        const result = await fn(...args);
        m.storeCalls.inc({ op, outcome: 'ok' });
        if (op === 'commit' && (result as { status?: string }).status === 'conflict') m.sessionConflicts.inc();
        if (op === 'claimEnded')
          for (const e of result as Array<{ reason: string }>) m.sweeperClaims.inc({ reason: e.reason });
        return result;
      } catch (err) {
        m.storeCalls.inc({ op, outcome: 'error' });
        throw err;
      } finally {
        stop();
      }
    };
  }
  return wrapped;
}
