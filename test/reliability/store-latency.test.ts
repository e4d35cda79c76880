import { afterAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { type NodeProcess, stopAll } from '../helpers/processes.js';
import { type ProbeCluster, perStore, probesBehindProxy, type SessionView, timed } from './fixture.js';

/**
 * A slow store (500 ms ± 200 per round trip: 250 ± 100 each way through the fault
 * proxy) under 2 probe processes and 12 browsers, each firing concurrent requests at
 * both nodes: every browser keeps exactly one session id (no request forks a second
 * session, the per-user index holds one), every write lands, and what is in flight is
 * bounded — store connections by the pool size, every request by the store timeout.
 */
const BROWSERS = 12;
const PARALLEL = 6;
const TIMEOUT = 5_000;
// Connections a probe may open to the store, for its two scopes (session, client): redis multiplexes
// one per scope; each pg pool is capped at 10.
const MAX_CONNECTIONS: Record<string, number> = { redis: 2, postgres: 20 };

afterAll(() => stopAll());

const { stores, setups: clusters } = await perStore(
  (s) =>
    probesBehindProxy(`latency-${s.name}`, s.url, 2, `${TIMEOUT}ms`, {
      // Sweeps would add their own round trips to the picture; this test is about requests.
      SHOAL_SWEEP_INTERVAL: '5s',
    }),
  (c) => c.close(),
);

// Each store has its own nodes and proxy: they run side by side.
describe.concurrent('a store at 500 ms ± 200 per round trip', () => {
  for (const store of stores) {
    it.skipIf(store.skip !== undefined)(
      `${store.name}: every browser keeps one session id; writes all land; in-flight work stays bounded`,
      async () => {
        const { proxy, nodes } = clusters.get(store.name) as ProbeCluster;
        proxy.latency(250, 100);
        const node = (i: number) => nodes[i % nodes.length] as NodeProcess;
        const run = `${Date.now().toString(36)}`;
        const started = Date.now();
        const browsers = await Promise.all(
          Array.from({ length: BROWSERS }, async (_, b) => {
            const jar = new CookieJar();
            const user = `lat-${run}-${b}`;
            const login = await timed(jar, `${node(b).url}/login?user=${user}`, { method: 'POST' }, 30_000);
            expect(login.status, JSON.stringify(login.body)).toBe(200);
            const id = jar.cookie.split('=')[1]?.split('.')[0];
            // Concurrent writes and reads on both nodes, each through the slow store.
            const results = await Promise.all(
              Array.from({ length: PARALLEL }, (_, i) =>
                i % 3 === 2
                  ? timed(jar, `${node(b + i).url}/session`, {}, 30_000)
                  : i % 3 === 1
                    ? timed(jar, `${node(b + i).url}/incr/n`, { method: 'POST' }, 30_000)
                    : timed(jar, `${node(b + i).url}/set/k${i}`, { method: 'POST', body: `v${i}` }, 30_000),
              ),
            );
            const [last, final] = await Promise.all([
              timed(jar, `${node(b).url}/sessions`, {}, 30_000),
              timed(jar, `${node(b + 1).url}/session`, {}, 30_000),
            ]);
            return { id, user, results, last, final };
          }),
        );
        const tookMs = Date.now() - started;
        proxy.clear();

        const ids = new Set<string>();
        for (const b of browsers) {
          expect(b.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
          ids.add(b.id as string);
          for (const r of b.results) {
            expect(r.status, JSON.stringify(r.body)).toBe(200);
            // No response hands this browser a different session.
            expect(r.setCookie).toEqual([]);
            // Bounded: one request is at most a few store round trips, far from the timeout's multiples.
            expect(r.ms).toBeLessThan(TIMEOUT * 2);
          }
          const listed = b.last.body as { current: string; sessions: Array<{ id: string }> };
          expect(listed.current).toBe(b.id);
          expect(listed.sessions.map((s) => s.id)).toEqual([b.id]);
          const final = b.final.body as unknown as SessionView;
          expect(final.id).toBe(b.id);
          expect(final.attributes).toMatchObject({ userId: b.user, n: PARALLEL / 3, k0: 'v0', k3: 'v3' });
        }
        expect(ids.size).toBe(BROWSERS);

        const stats = proxy.stats();
        console.info(
          `[latency ${store.name}] ${BROWSERS} browsers × ${PARALLEL + 3} requests in ${tookMs} ms; ` +
            `store connections: ${stats.accepted} opened, at most ${stats.maxOpen} at once`,
        );
        // 2 nodes: connections opened never exceed the pools, however many requests wait.
        expect(stats.maxOpen).toBeLessThanOrEqual(2 * (MAX_CONNECTIONS[store.name] ?? 1));
        // Everything was done in a small multiple of the slowest path (login: ~6 sequential round trips).
        expect(tookMs).toBeLessThan(25_000);
      },
      60_000,
    );
  }
});
