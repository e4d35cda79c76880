import { connect } from 'nats';
import { type Bus, type BusMessage, createBus } from 'shoal';
import { streamName } from 'shoal/bus/nats';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { binariesSkipReason, scratch } from './fixtures/engine-process.js';
import { expectFailoverHeld, printFigures, runFailoverLoad } from './fixtures/load.js';
import { type NatsClusterFixture, type NatsServer, startNatsCluster } from './fixtures/nats-cluster.js';
import { type Stack, startStack } from './fixtures/stack.js';

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
      const leader = await streamLeader(cluster, NAMESPACE);
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
        if (i === 50) void leader?.engine.kill('SIGKILL');
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

/** The server that leads the namespace's stream now, asked of the cluster. */
async function streamLeader(cluster: NatsClusterFixture, namespace: string): Promise<NatsServer | undefined> {
  const nc = await connect({ servers: cluster.servers.map((s) => `127.0.0.1:${s.port}`), timeout: 3000 });
  try {
    const info = await (await nc.jetstreamManager({ timeout: 3000 })).streams.info(streamName(namespace));
    return cluster.servers.find((s) => s.name === info.cluster?.leader);
  } finally {
    await nc.close();
  }
}

/**
 * The same death under the whole stack: 3 web nodes and 2 gateways (`shoal web` / `shoal gateway`)
 * with SHOAL_BUS listing all three servers (each client on a server of its own choosing), a web
 * publisher (`realtime.to(room).send(…)` in the probe) and a server API publisher (`POST /publish`
 * on the gateways) under a steady loop. Every publish is answered 200/202 or 503 + Retry-After,
 * never a 500 or nothing; every acknowledged one reaches the room's sockets.
 */
const LEADER_RECOVERY_BOUND_MS = 15_000;
describe.skipIf(skip !== undefined)('failover: the NATS stream leader dies under web nodes and gateways', () => {
  let cluster: NatsClusterFixture | undefined;
  let stack: Stack | undefined;
  const dir = scratch('nats-leader-store');
  afterAll(async () => {
    await stack?.stop();
    await cluster?.stop();
    dir.remove();
  });

  it('answers every publish 200 or 503 + Retry-After and loses no acknowledged message', async () => {
    cluster = await startNatsCluster();
    const key = 'stream-leader-publish-key-0123456789';
    stack = await startStack({
      name: 'nats-leader',
      store: `sqlite:${dir.dir}/sessions.db`,
      bus: `${cluster.url}?replicas=3`,
      env: { SHOAL_PUBLISH_KEY: key },
    });
    const nats = cluster;
    let killed: string | undefined;
    const figures = await runFailoverLoad({
      engine: 'nats stream leader',
      stack,
      channel: 'room:stream-leader',
      durationMs: 16_000,
      faultAtMs: 3000,
      serverApiKey: key,
      fault: async () => {
        // The CLI's nodes use the default namespace, so the stream is SHOAL_shoal.
        const leader = await streamLeader(nats, 'shoal');
        killed = leader?.name;
        await leader?.engine.kill('SIGKILL');
      },
    });
    printFigures(figures);
    expect(killed).toBeDefined();
    expectFailoverHeld(figures, { boundMs: LEADER_RECOVERY_BOUND_MS, storeUntouched: true });
  }, 150_000);
});
