import { type Bus, type BusMessage, createBus } from 'shoal';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { binariesSkipReason } from './fixtures/engine-process.js';
import { type NatsClusterFixture, startNatsCluster } from './fixtures/nats-cluster.js';

/**
 * Publishers on each server of a 3-server cluster append to one channel of a stream replicated on
 * all three, as fast as they are answered. nats-server 2.9 checks an append's expected last
 * subject sequence against what the stream leader has applied, not against appends still being
 * replicated, so two appends racing from one tail can both be stored. Each acknowledged publish
 * must still hold an offset of its own: dense, in one epoch, every one read back and delivered live.
 */
const skip = binariesSkipReason(['nats-server', '--version']);
const NAMESPACE = 'racing-appends';
const PER_PUBLISHER = 100;

describe.skipIf(skip !== undefined)('nats cluster bus: appends racing on a replicated stream', () => {
  let cluster: NatsClusterFixture | undefined;
  const buses: Bus[] = [];
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
    await cluster?.stop();
  });

  it('acknowledges each offset once, and every acknowledged message is read back and delivered', async () => {
    cluster = await startNatsCluster();
    const open = async (url: string) => {
      const bus = await createBus(url, { namespace: NAMESPACE, historySize: 1000, timeoutMs: 5000 });
      buses.push(bus);
      return bus;
    };
    const first = await open(`${cluster.url}?replicas=3`);
    const made = await first.publish('room:race', { event: 'e', data: '"made"' });
    const subscriber = await open(`nats://127.0.0.1:${cluster.servers[0]?.port}`);
    const got: BusMessage[] = [];
    subscriber.onMessage((m) => got.push(m));
    await subscriber.subscribe('room:race');
    const publishers = await Promise.all(cluster.servers.map((s) => open(`nats://127.0.0.1:${s.port}`)));

    const sent: BusMessage[] = [];
    await Promise.all(
      publishers.map(async (bus, who) => {
        for (let i = 0; i < PER_PUBLISHER; i++)
          sent.push(await bus.publish('room:race', { event: 'e', data: `"${who}:${i}"` }));
      }),
    );
    const total = PER_PUBLISHER * publishers.length;
    expect(new Set(sent.map((m) => m.epoch))).toEqual(new Set([made.epoch]));
    expect(sent.map((m) => m.offset).sort((a, b) => a - b)).toEqual(
      Array.from({ length: total }, (_, i) => made.offset + 1 + i),
    );
    const byOffset = (a: BusMessage, b: BusMessage) => a.offset - b.offset;
    const read = await first.read('room:race', made.offset, { limit: 1000 });
    expect(read.complete).toBe(true);
    expect(read.messages.map((m) => [m.offset, m.data])).toEqual(sent.sort(byOffset).map((m) => [m.offset, m.data]));
    await eventually(() => got.length >= total, { timeoutMs: 10_000, message: () => `got ${got.length}/${total}` });
    expect(got.map((m) => [m.offset, m.data])).toEqual(sent.map((m) => [m.offset, m.data]));
  }, 120_000);
});
