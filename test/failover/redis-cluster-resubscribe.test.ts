import { type Bus, type BusMessage, createBus } from 'shoal';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { binariesSkipReason } from './fixtures/engine-process.js';
import { ask } from './fixtures/probe.js';
import { type RedisClusterFixture, startRedisCluster } from './fixtures/redis-cluster.js';

/**
 * After a master fails over, the client library re-subscribes on the new master by itself but
 * ignores the answer. Here the new master refuses that SSUBSCRIBE (its ACL denies every pub/sub
 * channel until the test allows them again, as a node too busy to answer in time would fail it):
 * the bus must keep renewing the subscription until it holds, and deliver everything in order.
 */
const skip = binariesSkipReason(['redis-server', '--version'], ['redis-cli', '--version']);
const USER = 'bus';
const PASSWORD = 'cluster-secret';
const CHANNEL = 'room:renewed';
const NAMESPACE = 'resubscribe';

describe.skipIf(skip !== undefined)('redis cluster bus: subscriptions after a failover', () => {
  let cluster: RedisClusterFixture | undefined;
  const buses: Bus[] = [];
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
    await cluster?.stop();
  });

  it('renews a subscription the new master refused at first, then delivers every message in order', async () => {
    cluster = await startRedisCluster();
    for (const node of cluster.nodes)
      await ask(node.port, 'ACL', 'SETUSER', USER, 'on', `>${PASSWORD}`, '~*', '&*', '+@all');
    const url = cluster.url.replace('redis+cluster://', `redis+cluster://${USER}:${PASSWORD}@`);
    const open = async () => {
      const bus = await createBus(url, { namespace: NAMESPACE, timeoutMs: 1000 });
      buses.push(bus);
      return bus;
    };
    const subscriber = await open();
    const publisher = await open();
    const got: BusMessage[] = [];
    subscriber.onMessage((m) => {
      if (m.channel === CHANNEL) got.push(m);
    });
    await subscriber.subscribe(CHANNEL);
    await publisher.publish(CHANNEL, { event: 'e', data: 'before' });
    await eventually(() => got.length === 1, { timeoutMs: 5000, message: 'the first message' });

    const slot = Number(
      await ask(cluster.nodes[0]!.port, 'CLUSTER', 'KEYSLOT', `shoal:{${NAMESPACE}:${CHANNEL}}:live`),
    );
    const master = await cluster.masterOf(slot);
    const info = String(await ask(master.port, 'INFO', 'replication'));
    const replicaPort = Number(/slave0:.*port=(\d+)/.exec(info)?.[1]);
    const replica = cluster.nodes.find((n) => n.port === replicaPort);
    if (!replica) throw new Error(`no replica of ${master.port} in:\n${info}`);
    await ask(replica.port, 'ACL', 'SETUSER', USER, 'resetchannels');

    await master.engine.kill('SIGKILL');
    await eventually(async () => (await cluster!.masterOf(slot)).port === replica.port, {
      timeoutMs: 15_000,
      message: 'the replica taking over the slot',
      intervalMs: 100,
    });
    // Long enough for the client library's own SSUBSCRIBE on the new master to be refused.
    await new Promise((r) => setTimeout(r, 2000));
    await ask(replica.port, 'ACL', 'SETUSER', USER, '&*');

    const sent: string[] = [];
    for (let n = 0; n < 20; n++) {
      const data = `after-${n}`;
      await eventually(
        async () => {
          await publisher.publish(CHANNEL, { event: 'e', data });
          return true;
        },
        { timeoutMs: 10_000, intervalMs: 100, message: `publishing ${data}` },
      );
      sent.push(data);
    }
    await eventually(() => got.length >= 1 + sent.length, {
      timeoutMs: 15_000,
      message: () => `every message after the failover (got ${got.length - 1} of ${sent.length})`,
    });
    const after = got.slice(1).map((m) => m.data);
    // The promoted replica may lack the last entries of the old master: only what was sent after counts.
    expect(after.filter((d) => d.startsWith('after-'))).toEqual(sent);
    const offsets = got.filter((m) => m.epoch === got.at(-1)?.epoch).map((m) => m.offset);
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  }, 90_000);
});
