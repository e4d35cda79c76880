import { randomUUID } from 'node:crypto';
import { connect as natsConnect } from 'nats';
import { afterAll, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/contract.js';
import { natsBus, streamName } from '../../src/bus/nats.js';
import { redisBus } from '../../src/bus/redis.js';
import { BusUnavailableError } from '../../src/core/errors.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { type FaultProxy, faultProxy, targetOf, viaProxy } from '../helpers/fault-proxy.js';

/**
 * A failed publish says whether the message may still be delivered (BusUnavailableError.outcome):
 * 'unknown' when it was sent and no answer came (here the link is blackholed: once it heals, the
 * held request reaches the stream and the message is in the log), 'not-published' when it was
 * never sent (the connection is down: the bus waits for the reconnection until the deadline and
 * hands nothing to nats.js meanwhile, so nothing of it reaches the stream later).
 */
const skip = await engineSkipReason('nats');
const redisSkip = await engineSkipReason('redis');
const TIMEOUT_MS = 500;
const namespace = `outcome-${randomUUID().slice(0, 8)}`;
const CHANNEL = 'room:outcome';

async function rejection(p: Promise<unknown>): Promise<BusUnavailableError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BusUnavailableError);
  return err as BusUnavailableError;
}

describe.skipIf(skip !== undefined)('nats bus: what a failed publish did', () => {
  let proxy: FaultProxy | undefined;
  const buses: Bus[] = [];
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
    await proxy?.close();
    const nc = await natsConnect({ servers: targetOf(ENGINE_URLS.nats) });
    await (await nc.jetstreamManager()).streams.delete(streamName(namespace)).catch(() => false);
    await nc.close();
  });

  it('unknown when sent and unanswered (and it lands later); not-published when not connected (and it never lands)', async () => {
    proxy = await faultProxy(targetOf(ENGINE_URLS.nats));
    const pub = await natsBus({ url: viaProxy(ENGINE_URLS.nats, proxy), namespace, timeoutMs: TIMEOUT_MS });
    const reader = await natsBus({ url: ENGINE_URLS.nats, namespace, timeoutMs: 5000 });
    buses.push(pub, reader);
    await pub.publish(CHANNEL, { event: 'e', data: '"first"' });
    const logged = async () => (await reader.read(CHANNEL, 0)).messages.map((m) => m.data);

    proxy.blackhole();
    const held = await rejection(pub.publish(CHANNEL, { event: 'e', data: '"held"' }));
    expect(held.outcome).toBe('unknown');
    expect(held.message).toMatch(/may still be published/);
    proxy.clear();
    await eventually(async () => (await logged()).includes('"held"'), {
      timeoutMs: 10_000,
      intervalMs: 100,
      message: 'the unanswered publish in the log once the link healed',
    });

    // The publisher's next append starts from the log's real head (the one it knew is taken by "held").
    await pub.publish(CHANNEL, { event: 'e', data: '"second"' });
    await proxy.down();
    // Until nats.js has seen the socket close, a publish is written to it and is rightly 'unknown'.
    await new Promise((r) => setTimeout(r, 300));
    const refused = await rejection(pub.publish(CHANNEL, { event: 'e', data: '"refused"' }));
    expect(refused.outcome).toBe('not-published');
    expect(refused.message).toMatch(/was not published; sending it again is safe/);
    await proxy.up();
    await eventually(() => pub.publish(CHANNEL, { event: 'e', data: '"after"' }), {
      timeoutMs: 15_000,
      intervalMs: 100,
      message: 'a publish once the server is back',
    });
    // 'not-published' holds: "refused" never reaches the log, also after the reconnection.
    expect(await logged()).toEqual(['"first"', '"held"', '"second"', '"after"']);

    await pub.close();
    const closed = await rejection(pub.publish(CHANNEL, { event: 'e', data: '"closed"' }));
    expect(closed.outcome).toBe('not-published');
    // Other calls do not carry an outcome.
    const read = await rejection(pub.read(CHANNEL, 0));
    expect(read.outcome).toBeUndefined();
  }, 60_000);
});

describe.skipIf(redisSkip !== undefined)('redis bus: what a failed publish did', () => {
  let proxy: FaultProxy | undefined;
  const buses: Bus[] = [];
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
    await proxy?.close();
  });

  it('not-published while the connection is down, and it never lands, also once Redis is back', async () => {
    proxy = await faultProxy(targetOf(ENGINE_URLS.redis));
    const pub = await redisBus({ url: viaProxy(ENGINE_URLS.redis, proxy), namespace, timeoutMs: TIMEOUT_MS });
    const reader = await redisBus({ url: ENGINE_URLS.redis, namespace, timeoutMs: 5000 });
    buses.push(pub, reader);
    await pub.publish(CHANNEL, { event: 'e', data: '"first"' });
    const logged = async () => (await reader.read(CHANNEL, 0)).messages.map((m) => m.data);

    await proxy.down();
    // Long enough for ioredis to back off between attempts to connect: a publish made then waits for
    // the next attempt, which comes after the publish's 500 ms and finds Redis back.
    await new Promise((r) => setTimeout(r, 1_500));
    const refused = await Promise.all(
      Array.from({ length: 5 }, (_, i) => rejection(pub.publish(CHANNEL, { event: 'e', data: `"refused-${i}"` }))),
    );
    for (const err of refused) {
      expect(err.outcome).toBe('not-published');
      expect(err.message).toMatch(/was not published; sending it again is safe/);
    }
    await proxy.up();
    await eventually(() => pub.publish(CHANNEL, { event: 'e', data: '"after"' }), {
      timeoutMs: 15_000,
      intervalMs: 100,
      message: 'a publish once Redis is back',
    });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await logged()).toEqual(['"first"', '"after"']);

    await pub.close();
    expect((await rejection(pub.publish(CHANNEL, { event: 'e', data: '"closed"' }))).outcome).toBe('not-published');
  }, 60_000);

  it('unknown when sent and unanswered: the link held it, and it lands once the link heals', async () => {
    const held = await faultProxy(targetOf(ENGINE_URLS.redis));
    const ns = `${namespace}-held`;
    const pub = await redisBus({ url: viaProxy(ENGINE_URLS.redis, held), namespace: ns, timeoutMs: TIMEOUT_MS });
    const reader = await redisBus({ url: ENGINE_URLS.redis, namespace: ns, timeoutMs: 5000 });
    buses.push(pub, reader);
    try {
      await pub.publish(CHANNEL, { event: 'e', data: '"first"' });
      held.blackhole();
      const err = await rejection(pub.publish(CHANNEL, { event: 'e', data: '"held"' }));
      expect(err.outcome).toBe('unknown');
      expect(err.message).toMatch(/may still be published/);
      held.clear();
      await eventually(async () => (await reader.read(CHANNEL, 0)).messages.some((m) => m.data === '"held"'), {
        timeoutMs: 10_000,
        intervalMs: 100,
        message: 'the unanswered publish in the log once the link healed',
      });
    } finally {
      await held.close();
    }
  }, 60_000);
});
