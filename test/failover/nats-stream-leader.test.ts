import { connect } from 'nats';
import { type Bus, type BusMessage, createBus } from 'shoal';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { binariesSkipReason } from './fixtures/engine-process.js';
import { type NatsClusterFixture, startNatsCluster } from './fixtures/nats-cluster.js';

/**
 * Live messages reach a subscriber as the stream leader republishes them. Here the leader's server
 * is SIGKILLed while publisher and subscriber stay connected to the two other servers, so neither
 * reconnects: what the dying leader had stored but not yet republished to the subscriber's server
 * must still arrive (read from the stream), in order, once each, the last ones included.
 */
const skip = binariesSkipReason(['nats-server', '--version']);
const NAMESPACE = 'leader-death';
const CHANNEL = 'room:leader';

describe.skipIf(skip !== undefined)(
  'nats cluster bus: the stream leader dies under clients connected elsewhere',
  () => {
    let cluster: NatsClusterFixture | undefined;
    const buses: Bus[] = [];
    afterAll(async () => {
      await Promise.all(buses.map((b) => b.close().catch(() => {})));
      await cluster?.stop();
    });

    it('delivers every acknowledged message in order, once each, through and after the election', async () => {
      cluster = await startNatsCluster();
      const open = async (url: string) => {
        const bus = await createBus(url, { namespace: NAMESPACE, timeoutMs: 3000 });
        buses.push(bus);
        return bus;
      };
      const first = await open(`${cluster.url}?replicas=3`);
      await first.publish(CHANNEL, { event: 'e', data: '"made"' });
      const nc = await connect({ servers: cluster.servers.map((s) => `127.0.0.1:${s.port}`) });
      const info = await (await nc.jetstreamManager()).streams.info('SHOAL_leader-death');
      await nc.close();
      const leader = cluster.servers.find((s) => s.name === info.cluster?.leader);
      const others = cluster.servers.filter((s) => s !== leader);
      expect(leader).toBeDefined();
      const subscriber = await open(`nats://127.0.0.1:${others[0]?.port}`);
      const publisher = await open(`nats://127.0.0.1:${others[1]?.port}`);
      const got: BusMessage[] = [];
      subscriber.onMessage((m) => got.push(m));
      await subscriber.subscribe(CHANNEL);

      // 50 acknowledged before the kill, 100 after the election (a publish meanwhile fails: no leader answers).
      const sent: BusMessage[] = [];
      const started = Date.now();
      for (let i = 0; sent.length < 150 && Date.now() - started < 60_000; i++) {
        if (i === 50) leader?.engine.kill('SIGKILL');
        await publisher.publish(CHANNEL, { event: 'e', data: String(i) }).then(
          (m) => sent.push(m),
          () => {},
        );
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(sent.length).toBe(150);
      await eventually(() => got.length >= sent.length, {
        timeoutMs: 15_000,
        message: () => `got ${got.length}/${sent.length}`,
      });
      expect(got.map((m) => m.offset)).toEqual(sent.map((m) => m.offset));
      expect(got.map((m) => m.data)).toEqual(sent.map((m) => m.data));
    }, 120_000);
  },
);
