import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { type Bus, ConfigError, createBus } from 'shoal';
import { streamName } from 'shoal/bus/nats';
import { afterAll, describe, expect, it } from 'vitest';
import { doctor } from '../../src/cli/doctor.js';
import { silentLogger } from '../../src/core/logger.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { targetOf } from '../helpers/fault-proxy.js';
import { binariesSkipReason, scratch } from './fixtures/engine-process.js';
import { type NatsClusterFixture, startNatsCluster } from './fixtures/nats-cluster.js';

/**
 * The replicas of a namespace's stream on a 3-server cluster, as `shoal doctor` and the nodes make
 * and keep it: a URL listing the cluster's servers gets a replicated stream without `?replicas`,
 * `?replicas=3` brings a stream made with 1 to 3, and doctor says what is wrong when the only
 * server of a 1-replica stream is dead (JetStream itself answers).
 */
const skip = binariesSkipReason(['nats-server', '--version']);
const natsSkip = await engineSkipReason('nats');
const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';

describe.skipIf(skip !== undefined)('nats cluster bus: the stream has the replicas asked for', () => {
  let cluster: NatsClusterFixture | undefined;
  let nc: NatsConnection | undefined;
  const buses: Bus[] = [];
  const dir = scratch('nats-replicas');
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
    await nc?.close().catch(() => {});
    await cluster?.stop();
    dir.remove();
  });

  const diagnose = async (bus: string, namespace: string) => {
    const lines: string[] = [];
    const env = {
      SHOAL_BUS: bus,
      SHOAL_NAMESPACE: namespace,
      SHOAL_STORE: `sqlite:${dir.dir}/doctor.db`,
      SHOAL_SECRETS: SECRET,
      SHOAL_ORIGINS: 'http://localhost:8080',
    };
    const code = await doctor(env, { print: (l) => lines.push(l) });
    return { code, text: lines.join('\n') };
  };
  const replicasOf = async (namespace: string) => {
    const jsm = await nc!.jetstreamManager({ timeout: 5000 });
    return (await jsm.streams.info(streamName(namespace))).config.num_replicas;
  };

  it('doctor makes the stream a node would: 3 replicas for a URL listing 3 servers, under SHOAL_NAMESPACE', async () => {
    cluster = await startNatsCluster();
    nc = await connect({ servers: cluster.servers.map((s) => `127.0.0.1:${s.port}`), timeout: 5000 });
    const r = await diagnose(cluster.url, 'doctor-first');
    expect(r.text, r.text).toMatch(/^ok {4}message bus nats:/m);
    expect(await replicasOf('doctor-first')).toBe(3);
  }, 60_000);

  it('?replicas=3 brings a stream made with 1 replica to 3', async () => {
    const url = cluster!.url;
    const one = await createBus(`${url}?replicas=1`, { namespace: 'raised', timeoutMs: 5000 });
    buses.push(one);
    await one.publish('room', { event: 'e', data: '1' });
    expect(await replicasOf('raised')).toBe(1);
    await one.close();

    // Moved to 3 replicas, the stream has no leader until they elect one (about 5 s): the first call waits for it.
    const three = await createBus(`${url}?replicas=3`, { namespace: 'raised', timeoutMs: 15_000 });
    buses.push(three);
    const m = await three.publish('room', { event: 'e', data: '2' });
    expect(m.offset).toBe(2);
    expect(await replicasOf('raised')).toBe(3);
    // A client listing one server (default 1) leaves the replicated stream alone.
    const single = await createBus(`nats://127.0.0.1:${cluster!.servers[0]!.port}`, {
      namespace: 'raised',
      timeoutMs: 5000,
    });
    buses.push(single);
    await single.publish('room', { event: 'e', data: '3' });
    expect(await replicasOf('raised')).toBe(3);
  }, 60_000);

  it("doctor names a 1-replica stream whose only server is dead, not JetStream's absence", async () => {
    const c = cluster!;
    const one = await createBus(`${c.url}?replicas=1`, { namespace: 'orphan', timeoutMs: 5000 });
    buses.push(one);
    await one.publish('room', { event: 'e', data: '1' });
    await one.close();
    const jsm = await nc!.jetstreamManager({ timeout: 5000 });
    const leader = (await jsm.streams.info(streamName('orphan'))).cluster?.leader;
    const dead = c.servers.find((s) => s.name === leader);
    expect(dead).toBeDefined();
    await dead!.engine.kill('SIGKILL');
    const alive = c.servers.filter((s) => s !== dead);
    // JetStream itself answers again (the meta leader may have died with the server): only the stream does not.
    const servers = alive.map((s) => `127.0.0.1:${s.port}`);
    await eventually(
      async () => {
        const probe = await connect({ servers, timeout: 2000 });
        try {
          return Boolean(await probe.jetstreamManager({ timeout: 1000 }));
        } catch {
          return false;
        } finally {
          await probe.close();
        }
      },
      { timeoutMs: 30_000, intervalMs: 200, message: 'JetStream answering on the two servers left' },
    );
    const r = await diagnose(`nats://${alive.map((s) => `127.0.0.1:${s.port}`).join(',')}`, 'orphan');
    if (process.env.SHOAL_FAILOVER_DEBUG) console.log(r.text);
    expect(r.code).toBe(1);
    expect(r.text).toMatch(
      /^FAIL {2}message bus .*JetStream answers, but the stream SHOAL_orphan does not: it has no leader/m,
    );
    expect(r.text).not.toMatch(/JetStream enabled/);
    expect(r.text).not.toMatch(/point SHOAL_BUS at one that runs/);
  }, 60_000);
});

/**
 * A server outside a cluster holds 1 replica: the default for a URL listing several servers falls
 * back to it with a warning, while an asked `?replicas=3` fails with one line saying what to do.
 */
describe.skipIf(natsSkip !== undefined)('nats bus on a server outside a cluster', () => {
  const namespace = `standalone-${randomUUID().slice(0, 8)}`;
  const buses: Bus[] = [];
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
    const nc = await connect({ servers: targetOf(ENGINE_URLS.nats) });
    await (await nc.jetstreamManager()).streams.delete(streamName(namespace)).catch(() => false);
    await nc.close();
  });

  it('the default falls back to 1 replica; an asked 3 is refused with what exists, what was asked and the fix', async () => {
    const server = targetOf(ENGINE_URLS.nats);
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (_o: unknown, msg?: string) => void warnings.push(String(msg)) };
    const twice = await createBus(`nats://${server},${server}`, { namespace, timeoutMs: 5000, logger });
    buses.push(twice);
    await twice.publish('room', { event: 'e', data: '1' });
    expect(warnings.join('\n')).toMatch(/not a JetStream cluster: the bus stream has 1 replica/);

    const three = await createBus(`nats://${server}?replicas=3`, { namespace, timeoutMs: 5000 });
    buses.push(three);
    const err = await three.publish('room', { event: 'e', data: '2' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err, err?.message).toBeInstanceOf(ConfigError);
    expect(err?.message).toMatch(
      /stream SHOAL_standalone-\w+ from 1 to 3: replicas > 1 not supported in non-clustered mode; ask for 1 \(\?replicas=1\)/,
    );
    expect(err?.message).not.toMatch(/\n/);
  }, 30_000);
});
