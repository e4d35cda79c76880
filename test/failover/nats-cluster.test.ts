import { afterAll, describe, it } from 'vitest';
import { binariesSkipReason } from './fixtures/engine-process.js';
import { expectFailoverHeld, printFigures, runFailoverLoad } from './fixtures/load.js';
import { type NatsClusterFixture, startNatsCluster } from './fixtures/nats-cluster.js';
import { type RedisClusterFixture, startRedisCluster } from './fixtures/redis-cluster.js';
import { type Stack, startStack } from './fixtures/stack.js';

/**
 * A 3-server NATS cluster with JetStream (the namespace's stream replicated on all three) as the bus
 * of 3 web nodes and 2 gateways under load, sessions on a Redis Cluster; the server every gateway
 * and web node is connected to (the first one the URL lists) is SIGKILLed. Clients reconnect to
 * another server; the stream elects a new leader among the two left.
 */
// JetStream elects a new stream leader after a raft election timeout of 4–9 s (nats-server 2.9).
const RECOVERY_BOUND_MS = 15_000;
const skip = binariesSkipReason(
  ['nats-server', '--version'],
  ['redis-server', '--version'],
  ['redis-cli', '--version'],
);
describe.skipIf(skip !== undefined)('failover: NATS cluster', () => {
  let nats: NatsClusterFixture | undefined;
  let redis: RedisClusterFixture | undefined;
  let stack: Stack | undefined;
  afterAll(async () => {
    await stack?.stop();
    await nats?.stop();
    await redis?.stop();
  });

  it('loses no message, answers 503 + Retry-After while the server is gone, and publishes again within the bound', async () => {
    // One after the other: free ports are picked before they are bound, two fixtures at once could pick the same.
    nats = await startNatsCluster();
    redis = await startRedisCluster();
    const used = nats.servers[0]!;
    // Every client connects to the first server listed (no shuffling), so the fault hits all of them at once.
    const bus = `${nats.url}?replicas=3&noRandomize=1`;
    stack = await startStack({ name: 'nats', store: redis.url, bus });
    const figures = await runFailoverLoad({
      engine: 'nats cluster',
      stack,
      channel: 'room:failover-nats',
      durationMs: 16_000,
      faultAtMs: 3000,
      fault: () => used.engine.kill('SIGKILL'),
    });
    printFigures(figures);
    if (process.env.SHOAL_FAILOVER_DEBUG) for (const g of stack.gateways) console.log(g.name, g.output().slice(-3000));
    expectFailoverHeld(figures, { boundMs: RECOVERY_BOUND_MS, storeUntouched: true }); // the store was not touched
  }, 120_000);
});
