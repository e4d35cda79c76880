import { afterAll, describe, expect, it } from 'vitest';
import { binariesSkipReason } from './fixtures/engine-process.js';
import { expectFailoverHeld, printFigures, runFailoverLoad } from './fixtures/load.js';
import { ask } from './fixtures/probe.js';
import { CLUSTER_NODE_TIMEOUT_MS, type RedisClusterFixture, startRedisCluster } from './fixtures/redis-cluster.js';
import { type Stack, startStack } from './fixtures/stack.js';

/**
 * A Redis Cluster (3 masters, 3 replicas) as store and bus of 3 web nodes and 2 gateways under
 * load; the master holding the room's slot (and a third of the session buckets) is SIGKILLed. Its
 * replica takes over after cluster-node-timeout (1 s here); clients re-learn the slots.
 */
const RECOVERY_BOUND_MS = 10_000;
const CHANNEL = 'room:failover-cluster';
const skip = binariesSkipReason(['redis-server', '--version'], ['redis-cli', '--version']);
describe.skipIf(skip !== undefined)('failover: Redis Cluster', () => {
  let cluster: RedisClusterFixture | undefined;
  let stack: Stack | undefined;
  afterAll(async () => {
    await stack?.stop();
    await cluster?.stop();
  });

  it('loses no message, answers 503 + Retry-After while a master is down, and writes again within the bound', async () => {
    cluster = await startRedisCluster();
    stack = await startStack({ name: 'cluster', store: cluster.url, bus: cluster.url });
    // The bus keeps a channel's keys and its sharded pub/sub channel under the tag {<namespace>:<channel>}.
    const slot = Number(await ask(cluster.nodes[0]!.port, 'CLUSTER', 'KEYSLOT', `shoal:{shoal:${CHANNEL}}:live`));
    const master = await cluster.masterOf(slot);
    const figures = await runFailoverLoad({
      engine: 'redis cluster',
      stack,
      channel: CHANNEL,
      durationMs: 12_000,
      faultAtMs: 3000,
      fault: () => master.engine.kill('SIGKILL'),
    });
    printFigures(figures);
    console.log(`[failover redis cluster] cluster-node-timeout ${CLUSTER_NODE_TIMEOUT_MS} ms`);
    expect((await cluster.masterOf(slot)).port).not.toBe(master.port);
    expectFailoverHeld(figures, { boundMs: RECOVERY_BOUND_MS });
  }, 120_000);
});
