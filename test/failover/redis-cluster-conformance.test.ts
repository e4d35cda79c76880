import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createBus } from '../../src/bus/index.js';
import { createStore } from '../../src/stores/index.js';
import { collect, describeBusConformance } from '../conformance/bus-suite.js';
import { describeSessionConformance } from '../conformance/session-suite.js';
import { describeStoreConformance } from '../conformance/store-suite.js';
import { eventually } from '../helpers/eventually.js';
import { binariesSkipReason } from './fixtures/engine-process.js';
import { ask } from './fixtures/probe.js';
import { type RedisClusterFixture, startRedisCluster } from './fixtures/redis-cluster.js';

/**
 * The store, bus and session conformance suites against a real Redis Cluster (3 masters, 3 replicas)
 * this file starts on loopback ports, opened the way a deployment names it: `redis+cluster://seeds`.
 */
const skip = binariesSkipReason(['redis-server', '--version'], ['redis-cli', '--version']);
const cluster: RedisClusterFixture | undefined = skip ? undefined : await startRedisCluster();
afterAll(async () => {
  await cluster?.stop();
});
const url = () => cluster?.url ?? 'redis+cluster://127.0.0.1:1';
const run = randomUUID().slice(0, 8);

describeStoreConformance(
  'redis cluster',
  {
    connect: () => createStore(url(), { namespace: `store-${run}` }),
    connectDown: () => createStore('redis+cluster://127.0.0.1:1', { timeoutMs: 300 }),
  },
  skip,
);

describeSessionConformance(
  'redis cluster',
  (options) => createStore(url(), { namespace: `session-${run}${options?.namespace ?? ''}` }),
  skip,
);

describeBusConformance(
  'redis cluster',
  {
    connect: (options) => createBus(url(), { namespace: `bus-${run}`, ...options }),
    connectDown: () => createBus('redis+cluster://127.0.0.1:1', { namespace: `bus-${run}`, timeoutMs: 300 }),
  },
  skip,
);

describe.skipIf(skip !== undefined)('redis cluster bus', () => {
  it('spreads channels over every master and delivers each channel in order', async () => {
    const pub = await createBus(url(), { namespace: `spread-${run}` });
    const sub = await createBus(url(), { namespace: `spread-${run}` });
    try {
      const got = collect(sub);
      const channels = Array.from({ length: 24 }, (_, i) => `room:${i}`);
      for (const c of channels) await sub.subscribe(c);
      for (let n = 0; n < 5; n++) for (const c of channels) await pub.publish(c, { event: 'e', data: String(n) });
      await eventually(() => got.length === channels.length * 5);
      for (const c of channels) {
        expect(got.filter((m) => m.channel === c).map((m) => m.data)).toEqual(['0', '1', '2', '3', '4']);
      }
      // The channels' slots fall on all three masters, so every master's subscriber connection was used.
      const masters = new Set<number>();
      for (const c of channels) {
        const slot = Number(
          await ask(cluster!.nodes[0]!.port, 'CLUSTER', 'KEYSLOT', `shoal:{spread-${run}:${c}}:live`),
        );
        masters.add((await cluster!.masterOf(slot)).port);
      }
      expect(masters.size).toBe(3);
    } finally {
      await pub.close();
      await sub.close();
    }
  });
});
