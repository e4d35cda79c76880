import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { takeTimeout } from '../../src/stores/index.js';
import { CookieJar } from '../helpers/cookie-jar.js';
import { eventually } from '../helpers/eventually.js';
import { type NodeProcess, startNode, stopAll } from '../helpers/processes.js';
import {
  type ProbeCluster,
  perStore,
  probesBehindProxy,
  SECRET,
  type SessionView,
  scratchDir,
  sleep,
  step,
  type Timed,
  timed,
} from './fixture.js';

/**
 * Store down, blackholed or resetting connections, seen from real probe processes
 * whose SHOAL_STORE points at a fault proxy with `?timeout=500ms`: every request that
 * needs the session answers 503 with a JSON body within the timeout (never a 200 that
 * treats the browser as anonymous, never a hang, never a cleared cookie), and the nodes
 * recover by themselves once the store is reachable again.
 */
const TIMEOUT_MS = 500;
// Timeout + process scheduling on a shared 2-core machine; far below any client's patience.
const ANSWER_WITHIN_MS = TIMEOUT_MS + 1000;

afterAll(() => stopAll());

describe('?timeout= on a store URL', () => {
  it('is taken off the URL, leaving the rest byte for byte', () => {
    expect(takeTimeout('redis://127.0.0.1:6379/0?timeout=500ms')).toEqual({
      url: 'redis://127.0.0.1:6379/0',
      timeoutMs: 500,
    });
    expect(takeTimeout('postgres://u:p%40ss@db/x?sslmode=require&timeout=2s&application_name=a%20b')).toEqual({
      url: 'postgres://u:p%40ss@db/x?sslmode=require&application_name=a%20b',
      timeoutMs: 2000,
    });
    expect(takeTimeout('sqlite:.shoal/shoal.db?timeout=250ms')).toEqual({
      url: 'sqlite:.shoal/shoal.db',
      timeoutMs: 250,
    });
    expect(takeTimeout('sqlite:.shoal/shoal.db')).toEqual({ url: 'sqlite:.shoal/shoal.db' });
    expect(takeTimeout('redis://h:6379?db=1')).toEqual({ url: 'redis://h:6379?db=1' });
  });

  it('refuses a timeout that is not a positive duration, naming the setting', () => {
    expect(() => takeTimeout('redis://h:6379?timeout=soon')).toThrow(ConfigError);
    expect(() => takeTimeout('redis://h:6379?timeout=soon')).toThrow(
      /^the store URL's \?timeout= "soon" is not a duration/,
    );
    expect(() => takeTimeout('redis://h:6379?timeout=0')).toThrow(/above 0/);
    expect(() => takeTimeout('redis://h:6379?timeout=500')).toThrow(/"500" has no unit: write 500s, 500m or 500ms/);
  });
});

/** Every node must refuse the browser with a clear 503, fast, without touching its cookie. */
function expectUnavailable(r: Timed, what: string) {
  expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBe(503);
  expect(r.body.error, what).toBe('ERR_SHOAL_STORE_UNAVAILABLE');
  expect(String(r.body.message), what).toMatch(/store is unavailable/);
  expect(r.ms, `${what} took ${r.ms} ms`).toBeLessThan(ANSWER_WITHIN_MS);
  expect(r.setCookie, `${what} must not clear or replace the cookie`).toEqual([]);
}

const { stores, setups: clusters } = await perStore(
  (s) => probesBehindProxy(`outage-${s.name}`, s.url, 2, `${TIMEOUT_MS}ms`),
  (c) => c.close(),
);

// The stores run side by side (each has its own nodes and proxy); the faults of one store run in order.
describe.concurrent('networked stores behind a fault proxy', () => {
  for (const store of stores) {
    it.skipIf(store.skip !== undefined)(
      `${store.name}: down, blackhole, reset and a cut mid-query each answer 503 within the timeout on every node; the nodes recover by themselves`,
      async () => {
        const cluster = clusters.get(store.name) as ProbeCluster;
        const { proxy, nodes } = cluster;
        const browser = new CookieJar();
        const get = (node: NodeProcess) => timed(browser, `${node.url}/session`);
        let sessionId = '';
        let increments = 0;

        const recovered = async () => {
          for (const node of nodes) {
            await eventually(async () => (await get(node)).status === 200, {
              timeoutMs: 15_000,
              intervalMs: 100,
              message: `${node.name} recovered`,
            });
            const view = (await get(node)).body as unknown as SessionView;
            expect(view.id).toBe(sessionId);
            expect(view.attributes).toMatchObject({ userId: 'ada' });
          }
        };

        await step('served through the proxy', async () => {
          const [a, b] = nodes as [NodeProcess, NodeProcess];
          expect((await timed(browser, `${a.url}/login?user=ada`, { method: 'POST' })).status).toBe(200);
          expect((await timed(browser, `${b.url}/set/color`, { method: 'POST', body: 'teal' })).status).toBe(200);
          const view = (await get(a)).body as unknown as SessionView;
          expect(view.attributes).toMatchObject({ userId: 'ada', color: 'teal' });
          sessionId = view.id ?? '';
          expect(sessionId).toMatch(/^[A-Za-z0-9_-]{22}$/);
        });

        for (const fault of ['down', 'blackhole', 'reset'] as const) {
          await step(`store ${fault}`, async () => {
            if (fault === 'down') await proxy.down();
            else if (fault === 'blackhole') proxy.blackhole();
            else proxy.reset();
            try {
              // Reads, writes and increments on every node at once, plus a burst: none hangs, none is
              // answered as anonymous, none touches the cookie.
              increments += nodes.length;
              const answers = await Promise.all(
                nodes.flatMap((node) => [
                  get(node).then((r) => [r, `${node.name} GET /session`] as const),
                  timed(browser, `${node.url}/set/color`, { method: 'POST', body: 'red' }).then(
                    (r) => [r, `${node.name} POST /set`] as const,
                  ),
                  timed(browser, `${node.url}/incr/n`, { method: 'POST' }).then(
                    (r) => [r, `${node.name} POST /incr`] as const,
                  ),
                  ...[1, 2, 3].map(() => get(node).then((r) => [r, `${node.name} parallel GET`] as const)),
                ]),
              );
              for (const [r, what] of answers) expectUnavailable(r, what);
              // A request that never needs the session is still served: the node itself is up.
              expect((await timed(new CookieJar(), `${nodes[0]?.url}/healthz`)).status).toBe(200);
            } finally {
              if (fault === 'down') await proxy.up();
              proxy.clear();
            }
            await recovered();
            // A 503 is an unknown outcome, not "nothing happened": a command already on the wire (blackhole)
            // or queued by the driver while it reconnects (redis) may still be applied after the answer. What
            // holds: each write is applied whole or not at all, and at most once (drivers never resend).
            const view = (await get(nodes[0] as NodeProcess)).body as unknown as SessionView;
            expect(['teal', 'red']).toContain(view.attributes.color);
            expect(Number(view.attributes.n ?? 0)).toBeLessThanOrEqual(increments);
          });
        }

        await step('connections cut while queries are in flight', async () => {
          // Slow the link so that every request has a query on the wire when the connections drop.
          proxy.latency(150);
          const inFlight = nodes.flatMap((node) =>
            [1, 2, 3].map(() => timed(browser, `${node.url}/session`, {}, ANSWER_WITHIN_MS + 2000)),
          );
          await sleep(100);
          await proxy.down();
          const answers = await Promise.all(inFlight);
          try {
            for (const node of nodes) {
              expect(node.child.exitCode, `${node.name} crashed:\n${node.output().slice(-1500)}`).toBeNull();
            }
            for (const r of answers) expect([200, 503], JSON.stringify(r.body)).toContain(r.status);
            for (const node of nodes) expectUnavailable(await get(node), `${node.name} GET /session after the cut`);
          } finally {
            await proxy.up();
            proxy.clear();
          }
          await recovered();
        });
      },
      60_000,
    );
  }

  it('sqlite, while another process holds the write lock: writes answer 503 within busy_timeout, reads are still served (WAL), writes work again once released', async () => {
    const scratch = scratchDir('shoal-outage-');
    const path = `${scratch.dir}/locked.db`;
    const node = await startNode({
      name: 'outage-sqlite',
      script: 'examples/probe/server.ts',
      env: { SHOAL_STORE: `sqlite:${path}?timeout=${TIMEOUT_MS}ms`, SHOAL_BUS: 'memory:', SHOAL_SECRETS: SECRET },
    });
    try {
      const browser = new CookieJar();
      expect((await timed(browser, `${node.url}/set/color`, { method: 'POST', body: 'teal' })).status).toBe(200);
      const holder = new Database(path, { timeout: 5000 });
      holder.exec('BEGIN IMMEDIATE');
      try {
        expectUnavailable(await timed(browser, `${node.url}/set/color`, { method: 'POST', body: 'red' }), 'write');
        expectUnavailable(await timed(browser, `${node.url}/incr/n`, { method: 'POST' }), 'increment');
        const read = await timed(browser, `${node.url}/session`);
        expect(read.status).toBe(200);
        expect(read.body.attributes).toEqual({ color: 'teal' });
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
      expect((await timed(browser, `${node.url}/set/color`, { method: 'POST', body: 'red' })).status).toBe(200);
      expect((await timed(browser, `${node.url}/session`)).body.attributes).toEqual({ color: 'red' });
    } finally {
      await node.stop('SIGKILL');
      scratch.remove();
    }
  }, 30_000);
});
