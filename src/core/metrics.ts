import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { BoundCounter, BoundHistogram } from './bound-metrics.js';
import { ConfigError } from './errors.js';

/**
 * Where a component (session manager, store, gateway) counts, one rule for all: by default (or
 * `true`) in the process registry that `metricsRegistry()` returns and CLI nodes serve on /metrics;
 * `{ registry }` in a prom-client Registry of the app's; `false` nowhere. Components given the same
 * registry share its series (told apart by their labels, e.g. a session manager's `scope`).
 */
export type MetricsOption = boolean | { registry?: Registry };

/** The registry a component's metrics go to, or null with `metrics: false`. */
export function registryOf(option: MetricsOption | undefined): Registry | null {
  if (option === false) return null;
  if (option === undefined || option === true) return metricsRegistry();
  if (typeof option === 'object' && option !== null) {
    if (option.registry === undefined) return metricsRegistry();
    if (typeof (option.registry as Partial<Registry>).registerMetric === 'function') return option.registry;
  }
  throw new ConfigError(
    'metrics must be true, false or { registry } with a prom-client Registry (new Registry() from prom-client)',
  );
}

/**
 * Metrics built once per registry, so every component counting in one registry shares the same
 * series (prom-client refuses a second metric of the same name in a registry).
 */
export function perRegistry<T>(build: (registry: Registry) => T): (registry: Registry) => T {
  const made = new WeakMap<Registry, T>();
  return (registry) => {
    let m = made.get(registry);
    if (m === undefined) {
      m = build(registry);
      made.set(registry, m);
    }
    return m;
  };
}

/** Shoal's session, HTTP and store metrics in one registry. */
export interface ShoalMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'status'>;
  httpDuration: Histogram<'method'>;
  /** Counted on every session request: see bound-metrics.ts for why not prom-client's own. */
  storeCalls: BoundCounter<'op' | 'outcome'>;
  storeLatency: BoundHistogram<'op'>;
  sessionConflicts: Counter;
  sweeperClaims: Counter<'reason'>;
  lockWaits: Counter<'outcome'>;
  nearCacheReads: Counter<'scope' | 'result'>;
  cookiesRejected: Counter<'scope' | 'reason'>;
  inFlight: Gauge;
  replicaWaits: Counter<'outcome'>;
}

let processRegistry: Registry | undefined;

/**
 * The Prometheus registry holding shoal's metrics (and the process's default ones), for an app that
 * serves its own `/metrics`: `res.type(metricsRegistry().contentType).send(await metricsRegistry().metrics())`.
 * Created on first use so an app that never asks for metrics pays nothing.
 */
export function metricsRegistry(): Registry {
  if (processRegistry) return processRegistry;
  processRegistry = new Registry();
  collectDefaultMetrics({ register: processRegistry });
  return processRegistry;
}

/** Shoal's session, HTTP and store metrics in `registry` (default: the process registry). */
export function metrics(registry: Registry = metricsRegistry()): ShoalMetrics {
  return shoalMetricsIn(registry);
}

const shoalMetricsIn = perRegistry((registry): ShoalMetrics => {
  const r = [registry];
  return {
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
    storeCalls: new BoundCounter(
      'shoal_store_calls_total',
      'Session store calls by operation (load, commit, touch, create, destroy, claimEnded, …) and outcome',
      ['op', 'outcome'],
      r,
    ),
    storeLatency: new BoundHistogram(
      'shoal_store_latency_seconds',
      'Session store call latency',
      ['op'],
      [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      r,
    ),
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
    replicaWaits: new Counter({
      name: 'shoal_store_replica_waits_total',
      help: 'Session writes under redis waitReplicas: confirmed (enough replicas had the write in time), timeout (answered anyway), skipped (answered without waiting: after a timeout, until the primary lists enough replicas again)',
      labelNames: ['outcome'],
      registers: r,
    }),
  };
});
