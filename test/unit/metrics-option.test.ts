import { Registry } from 'prom-client';
import { ConfigError, createStore, metricsRegistry, SessionManager, silentLogger } from 'shoal';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryBus } from '../../src/bus/memory.js';
import { createGateway, type Gateway } from '../../src/realtime/gateway.js';
import { freePort } from '../helpers/processes.js';

/** One option, one rule, for session managers (and their locks), stores and gateways. */
const SECRET = 'metrics-option-secret-0123456789abcdefghij';
const closers: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

/** A manager over a fresh memory store that has one session and took one lock in it. */
async function lockedOnce(scope: string, metrics?: false | { registry: Registry }) {
  const store = await createStore('memory:');
  const m = new SessionManager({
    store,
    secrets: [SECRET],
    scope,
    sweep: { enabled: false },
    logger: silentLogger,
    ...(metrics === undefined ? {} : { metrics }),
  });
  closers.push(() => m.close());
  const s = m.open(undefined);
  s.set('n', 1);
  await s.commit();
  const cookie = m.setCookieHeader(s)?.split(';')[0];
  await m.open(cookie).lock('pay', async () => {});
  return m;
}

const sample = async (registry: Registry, name: string, labels: Record<string, string>): Promise<number> => {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want));
  return hit?.value ?? 0;
};

describe('the metrics option', () => {
  it('counts a session manager, its store calls and its lock in the registry given, and only there', async () => {
    const registry = new Registry();
    const before = await sample(metricsRegistry(), 'shoal_session_lock_acquisitions_total', { outcome: 'acquired' });
    await lockedOnce('metrics-own', { registry });
    expect(await sample(registry, 'shoal_session_lock_acquisitions_total', { outcome: 'acquired' })).toBe(1);
    expect(await sample(registry, 'shoal_store_calls_total', { op: 'create', outcome: 'ok' })).toBe(1);
    expect(await sample(metricsRegistry(), 'shoal_session_lock_acquisitions_total', { outcome: 'acquired' })).toBe(
      before,
    );
  });

  it('counts by default in the process registry, and nowhere with metrics: false (the lock included)', async () => {
    const processCount = () =>
      sample(metricsRegistry(), 'shoal_session_lock_acquisitions_total', { outcome: 'acquired' });
    const start = await processCount();
    await lockedOnce('metrics-default');
    expect(await processCount()).toBe(start + 1);
    const m = await lockedOnce('metrics-off', false);
    expect(m.stats.lockAcquired).toBe(1); // the lock ran; only its metric is off
    expect(await processCount()).toBe(start + 1);
  });

  it('puts gateways in the process registry by default, in the registry given, or nowhere (/metrics 404)', async () => {
    const sessions = new SessionManager({
      store: await createStore('memory:'),
      secrets: [SECRET],
      logger: silentLogger,
    });
    closers.push(() => sessions.close());
    const start = async (metrics?: false | { registry: Registry }): Promise<{ gateway: Gateway; url: string }> => {
      const gateway = await createGateway({
        bus: memoryBus({ namespace: 'metrics-option' }),
        sessions,
        origins: ['https://app.example.com'],
        logger: silentLogger,
        ...(metrics === undefined ? {} : { metrics }),
      });
      const port = await freePort();
      await gateway.listen(port);
      closers.push(() => gateway.close());
      return { gateway, url: `http://127.0.0.1:${port}/metrics` };
    };
    const byDefault = await start();
    expect(byDefault.gateway.metrics.registry).toBe(metricsRegistry());
    const text = await (await fetch(byDefault.url)).text();
    expect(text).toContain('shoal_gateway_connections');
    expect(text).toContain('process_cpu_user_seconds_total'); // the process registry's default metrics

    // Two gateways given one registry share its series rather than collide.
    const registry = new Registry();
    const [a, b] = [await start({ registry }), await start({ registry })];
    a.gateway.metrics.messagesOut.inc(2);
    b.gateway.metrics.messagesOut.inc(3);
    expect(await (await fetch(a.url)).text()).toMatch(/^shoal_gateway_messages_out_total 5$/m);

    const off = await start(false);
    const res = await fetch(off.url);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toMatch(/metrics are off/);
  });

  it('refuses a registry that is not one, saying what to pass', async () => {
    const bad = { registry: {} as Registry };
    const store = await createStore('memory:');
    expect(() => new SessionManager({ store, secrets: [SECRET], metrics: bad })).toThrow(ConfigError);
    expect(() => new SessionManager({ store, secrets: [SECRET], metrics: bad })).toThrow(
      /metrics must be true, false or \{ registry \}/,
    );
    await store.close();
    await expect(createStore('memory:', { metrics: bad })).rejects.toThrow(
      /metrics must be true, false or \{ registry \}/,
    );
  });
});
