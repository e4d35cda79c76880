import { createStore, defineSession } from 'shoal';

/**
 * The store and sessions of the shoal/express, shoal/fastify, shoal/node and shoal/hono peers, from the environment:
 * SHOAL_STORE (default a local Redis), SHOAL_NAMESPACE, SHOAL_SECRETS (else `devSecret`),
 * SHOAL_COOKIE_SECURE; shoal's defaults otherwise (metrics on, the sweeper running). BENCH_SWEEP=off stops
 * the sweeper, for a diagnostic only: it claims ended sessions every 250 ms whatever the load, so a
 * slowed-down server (callgrind) pays it on far fewer requests than a real one. BENCH_METRICS=off turns
 * the metrics off, also a diagnostic only: what counting and timing every store call costs a request.
 */
export async function shoalSessions(devSecret: string) {
  const url = process.env.SHOAL_STORE ?? 'redis://127.0.0.1:6379';
  const secrets = (process.env.SHOAL_SECRETS ?? devSecret).split(',');
  const store = await createStore(url, { namespace: process.env.SHOAL_NAMESPACE ?? 'session' });
  const sessions = defineSession({
    store,
    secrets,
    cookie: { secure: process.env.SHOAL_COOKIE_SECURE === 'true' },
    ...(process.env.BENCH_SWEEP === 'off' ? { sweep: { enabled: false } } : {}),
    ...(process.env.BENCH_METRICS === 'off' ? { metrics: false as const } : {}),
  });
  return { store, sessions };
}
