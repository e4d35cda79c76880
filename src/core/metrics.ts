import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The process's Prometheus registry and shoal's metrics in it. Created on
 * first use so an app that never asks for metrics pays nothing.
 */
export interface ShoalMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'status'>;
  httpDuration: Histogram<'method'>;
  storeCalls: Counter<'op' | 'outcome'>;
  storeLatency: Histogram<'op'>;
  sessionConflicts: Counter;
  sweeperClaims: Counter<'reason'>;
  lockWaits: Counter<'outcome'>;
  nearCacheReads: Counter<'scope' | 'result'>;
  cookiesRejected: Counter<'scope' | 'reason'>;
  inFlight: Gauge;
}

let current: ShoalMetrics | undefined;

export function metrics(): ShoalMetrics {
  if (current) return current;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  current = {
    registry,
    httpRequests: new Counter({
      name: 'shoal_http_requests_total',
      help: 'HTTP requests served',
      labelNames: ['method', 'status'],
      registers: r,
    }),
    httpDuration: new Histogram({
      name: 'shoal_http_request_duration_seconds',
      help: 'HTTP request duration, including the session commit',
      labelNames: ['method'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: r,
    }),
    storeCalls: new Counter({
      name: 'shoal_store_calls_total',
      help: 'Session store calls by operation (load, commit, touch, create, destroy, claimEnded, …) and outcome',
      labelNames: ['op', 'outcome'],
      registers: r,
    }),
    storeLatency: new Histogram({
      name: 'shoal_store_latency_seconds',
      help: 'Session store call latency',
      labelNames: ['op'],
      buckets: [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: r,
    }),
    sessionConflicts: new Counter({
      name: 'shoal_session_conflicts_total',
      help: 'Compare-and-swap commits that lost to a concurrent write',
      registers: r,
    }),
    sweeperClaims: new Counter({
      name: 'shoal_sweeper_claims_total',
      help: 'Ended sessions claimed by this node',
      labelNames: ['reason'],
      registers: r,
    }),
    lockWaits: new Counter({
      name: 'shoal_session_lock_acquisitions_total',
      help: 'session.lock() outcomes',
      labelNames: ['outcome'],
      registers: r,
    }),
    nearCacheReads: new Counter({
      name: 'shoal_session_near_cache_reads_total',
      help: 'Session loads through the near cache: hit (rev unchanged, attributes from memory), changed (rev moved, full record), absent (nothing cached, plain load), gone (session ended)',
      labelNames: ['scope', 'result'],
      registers: r,
    }),
    cookiesRejected: new Counter({
      name: 'shoal_session_cookies_rejected_total',
      help: 'Session cookies refused (the request then has no session): duplicate (a planted second cookie), oversized, bad-signature (malformed or not signed by the key ring)',
      labelNames: ['scope', 'reason'],
      registers: r,
    }),
    inFlight: new Gauge({ name: 'shoal_http_in_flight', help: 'Requests being served', registers: r }),
  };
  return current;
}
