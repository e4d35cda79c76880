import { createStore, metricsRegistry } from 'shoal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  binariesSkipReason,
  type EngineProcess,
  killEngines,
  portOpen,
  scratch,
  spawnRedis,
  waitUntil,
} from '../failover/fixtures/engine-process.js';
import { freePort } from '../helpers/processes.js';

/**
 * `?waitReplicas=1&waitTimeout=<duration>` on a real primary with one real replica: each session write is
 * answered once the replica has it, and when the replica stops answering (SIGSTOP) a write is
 * answered after the timeout anyway and counted as `timeout`; writes meanwhile share that wait,
 * and after it are answered without waiting (`skipped`) until the primary lists the replica again.
 */
const skip = binariesSkipReason(['redis-server', '--version']);
const WAIT_MS = 300;

const waits = async (outcome: string): Promise<number> => {
  const metric = (await metricsRegistry().getSingleMetricAsString('shoal_store_replica_waits_total')).split('\n');
  const line = metric.find((l) => l.startsWith(`shoal_store_replica_waits_total{outcome="${outcome}"}`));
  return Number(line?.split(' ')[1] ?? 0);
};

describe.skipIf(skip)('redis store waitReplicas', () => {
  const dir = scratch('shoal-wait-');
  const engines: EngineProcess[] = [];
  let primary = 0;
  let replica: EngineProcess;
  beforeAll(async () => {
    primary = await freePort();
    const replicaPort = await freePort();
    engines.push(spawnRedis('primary', primary, dir.dir));
    replica = spawnRedis('replica', replicaPort, dir.dir, ['--replicaof', '127.0.0.1', String(primary)]);
    engines.push(replica);
    await waitUntil(
      'both listening',
      async () => (await portOpen(primary)) && (await portOpen(replicaPort)),
      10_000,
      engines,
    );
    const { Redis } = await import('ioredis');
    const probe = new Redis(replicaPort, '127.0.0.1');
    await waitUntil(
      'replica synced',
      async () => (await probe.info('replication')).includes('master_link_status:up'),
      10_000,
      engines,
    );
    probe.disconnect();
    // Synced is not yet acknowledging: wait until the replica answers a WAIT, as it will in the tests.
    const onPrimary = new Redis(primary, '127.0.0.1');
    await onPrimary.set('wait-warmup', '1');
    await waitUntil(
      'replica acknowledging',
      async () => Number(await onPrimary.call('WAIT', 1, 500)) >= 1,
      10_000,
      engines,
    );
    onPrimary.disconnect();
  });
  afterAll(async () => {
    replica?.child.kill('SIGCONT');
    await killEngines(engines);
    dir.remove();
  });

  const session = (id: string) => ({
    id,
    attributes: { a: '"1"' },
    meta: {
      createdAt: Date.now(),
      lastSeenAt: Date.now(),
      idleDeadline: Date.now() + 60_000,
      absoluteDeadline: Date.now() + 600_000,
      rev: 1,
      userId: null,
    },
  });

  it('answers a write once the replica has it', async () => {
    const store = await createStore(`redis://127.0.0.1:${primary}?waitReplicas=1&waitTimeout=${WAIT_MS}ms`);
    try {
      const before = await waits('confirmed');
      expect(await store.create(session('wait-a'))).toBe(true);
      const r = await store.commit(
        'wait-a',
        { set: { b: '"2"' } },
        { now: Date.now(), idleDeadline: Date.now() + 60_000 },
      );
      expect(r.status).toBe('ok');
      // Both writes were confirmed by the replica within the timeout (a slow machine may take a while to run them at all).
      expect(await waits('confirmed')).toBe(before + 2);
    } finally {
      await store.close();
    }
  });

  it('answers after the timeout when the replica does not confirm, and counts it', async () => {
    const store = await createStore(`redis://127.0.0.1:${primary}?waitReplicas=1&waitTimeout=${WAIT_MS}ms`);
    replica.child.kill('SIGSTOP');
    try {
      const before = await waits('timeout');
      const started = Date.now();
      expect(await store.create(session('wait-b'))).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(WAIT_MS - 20);
      expect(await waits('timeout')).toBe(before + 1);
    } finally {
      replica.child.kill('SIGCONT');
      await store.close();
    }
  });

  it('holds writes and reads for one timeout, not one per write, while the replica does not confirm', async () => {
    const store = await createStore(`redis://127.0.0.1:${primary}?waitReplicas=1&waitTimeout=${WAIT_MS}ms`);
    replica.child.kill('SIGSTOP');
    try {
      const before = { timeout: await waits('timeout'), skipped: await waits('skipped') };
      const started = Date.now();
      // 20 writes at once: one WAIT each, sent one after another on the connection, would take 20 timeouts.
      const created = await Promise.all(Array.from({ length: 20 }, (_, i) => store.create(session(`wait-c${i}`))));
      expect(created.every(Boolean)).toBe(true);
      expect(Date.now() - started).toBeLessThan(4 * WAIT_MS);
      const timedOut = (await waits('timeout')) - before.timeout;
      expect(timedOut).toBeGreaterThanOrEqual(1);
      // Within the next second, writes and reads do not wait for the replica at all.
      const next = Date.now();
      expect(await store.create(session('wait-d'))).toBe(true);
      expect(await store.load('wait-d', Date.now())).not.toBeNull();
      expect(Date.now() - next).toBeLessThan(WAIT_MS);
      expect((await waits('skipped')) - before.skipped).toBe(1);
      expect(timedOut + (await waits('skipped')) - before.skipped).toBe(21);
      // The replica answers again: once the primary's ROLE lists it, writes wait for it again.
      replica.child.kill('SIGCONT');
      const confirmed = await waits('confirmed');
      const until = Date.now() + 5000;
      for (let i = 0; (await waits('confirmed')) === confirmed && Date.now() < until; i++) {
        expect(await store.create(session(`wait-e${i}`))).toBe(true);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await waits('confirmed')).toBeGreaterThan(confirmed);
    } finally {
      replica.child.kill('SIGCONT');
      await store.close();
    }
  });

  it('refuses bad values and Redis Cluster with one line, before connecting', async () => {
    await expect(createStore(`redis://127.0.0.1:${primary}?waitReplicas=0`)).rejects.toThrow(
      /^redis store: waitReplicas must be an integer from 1 to 16 \(got 0\)/,
    );
    await expect(createStore(`redis://127.0.0.1:${primary}?waitReplicas=1&waitTimeout=soon`)).rejects.toThrow(
      /the waitTimeout in the store URL "soon" is not a duration/,
    );
    await expect(createStore('redis+cluster://127.0.0.1:1?waitReplicas=1')).rejects.toThrow(/not with Redis Cluster/);
  });
});
