import { randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { amqpBus, dropAmqpNamespace } from '../../src/bus/amqp.js';
import { logNames, logNamesForKey, routingKey } from '../../src/bus/amqp-log.js';
import type { Bus } from '../../src/bus/contract.js';
import { ConfigError } from '../../src/core/errors.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { sleep } from './bus-suite.js';

const skip = await engineSkipReason('amqp');
const url = ENGINE_URLS.amqp;
const namespaces: string[] = [];
const opened: Bus[] = [];

afterAll(async () => {
  await Promise.allSettled(opened.map((b) => b.close()));
  if (!skip) for (const ns of namespaces) await dropAmqpNamespace(url, ns);
});

const freshNamespace = () => {
  const ns = `test-part-${randomUUID().slice(0, 8)}`;
  namespaces.push(ns);
  return ns;
};
const open = async (namespace: string, extra: Partial<Parameters<typeof amqpBus>[0]> = {}) => {
  const bus = await amqpBus({ url, namespace, ...extra });
  opened.push(bus);
  return bus;
};

/** Whether a queue exists, asked on a throwaway channel (a 404 closes the channel). */
async function queueExists(conn: amqplib.ChannelModel, name: string): Promise<boolean> {
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  try {
    await ch.checkQueue(name);
    await ch.close();
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(skip !== undefined)('amqp bus partitions', () => {
  it('refuses a partition count that is not a whole number from 1 to 1024, in one line', async () => {
    await expect(amqpBus({ url: `${url}?partitions=0` })).rejects.toThrow(ConfigError);
    await expect(amqpBus({ url: `${url}?partitions=abc` })).rejects.toThrow(/partitions=abc must be a whole number/);
    await expect(amqpBus({ url, partitions: 2000 })).rejects.toThrow(/from 1 to 1024/);
  });

  it('keeps 2 queues per partition however many channels: 60 channels on ?partitions=2', async () => {
    const ns = freshNamespace();
    // Making a partition's stream can take seconds on a loaded broker.
    const bus = await open(ns, { url: `${url}?partitions=2`, timeoutMs: 15_000 });
    const channels = Array.from({ length: 60 }, (_, i) => `user:${i}`);
    await Promise.all(channels.map((ch) => bus.publish(ch, { event: 'e', data: '1' })));
    const conn = await amqplib.connect(url);
    try {
      const partitionQueues = new Set(channels.flatMap((ch) => Object.values(logNames(ns, ch, 2))));
      // Token and stream of 2 partitions (the lock queue exists only while a log is being made).
      const live = [];
      for (const q of partitionQueues) if (await queueExists(conn, q)) live.push(q);
      expect(live).toHaveLength(4);
      // None of the one-pair-per-channel queues of the earlier layout.
      const perChannel = logNamesForKey(ns, routingKey('user:7'));
      expect(await queueExists(conn, perChannel.token)).toBe(false);
      expect(await queueExists(conn, perChannel.stream)).toBe(false);
    } finally {
      await conn.close();
    }
    for (const ch of channels.slice(0, 5)) expect(await bus.position(ch)).toMatchObject({ offset: 1 });
  });

  it('gives a client new to a partition, or one far behind, the next offsets and the history, from the newest checkpoint', async () => {
    const ns = freshNamespace();
    // A checkpoint at least every 2 s (a quarter of the history TTL).
    const options = { url: `${url}?partitions=1`, historyTtlMs: 8000 };
    const writer = await open(ns, options);
    const behind = await open(ns, options);
    for (let i = 1; i <= 3; i++) await writer.publish('x', { event: 'e', data: `x${i}` });
    expect(await behind.publish('x', { event: 'e', data: 'x4' })).toMatchObject({ offset: 4 });
    await sleep(2100);
    // More records than the token lists: `behind` has to read the stream to catch up.
    const burst = await Promise.all(
      Array.from({ length: 300 }, (_, i) => writer.publish(i % 2 ? 'y' : 'z', { event: 'e', data: `${i}` })),
    );
    expect(Math.max(...burst.map((m) => m.offset))).toBe(150);
    expect(await behind.publish('x', { event: 'e', data: 'x5' })).toMatchObject({ offset: 5 });
    expect(await behind.position('y')).toMatchObject({ offset: 150 });

    const newcomer = await open(ns, options);
    expect(await newcomer.position('x')).toEqual({ epoch: burst[0]?.epoch, offset: 5 });
    const read = await newcomer.read('x', 2);
    expect(read).toMatchObject({ complete: true });
    expect(read.messages.map((m) => m.data)).toEqual(['x3', 'x4', 'x5']);
    expect(await newcomer.publish('y', { event: 'e', data: 'next' })).toMatchObject({ offset: 151 });
    const ys = await newcomer.read('y', 140);
    expect(ys.messages.map((m) => m.offset)).toEqual([141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151]);
  });

  it('runs beside queues of the one-pair-per-channel layout without reading them, and drops them with the namespace', async () => {
    const ns = freshNamespace();
    const old = logNamesForKey(ns, routingKey('room:old'));
    const conn = await amqplib.connect(url);
    try {
      const ch = await conn.createConfirmChannel();
      await ch.assertQueue(old.token, { durable: true });
      ch.sendToQueue(old.token, Buffer.from(JSON.stringify({ e: 'old-epoch', o: 41 })), { persistent: true });
      await ch.assertQueue(`shoal.${ns}.registry`, { durable: true });
      ch.sendToQueue(`shoal.${ns}.registry`, Buffer.from(old.routingKey), { persistent: true });
      await ch.waitForConfirms();
      await ch.assertQueue(old.stream, { durable: true, arguments: { 'x-queue-type': 'stream' } });
      await ch.close();

      const bus = await open(ns);
      const first = await bus.publish('room:old', { event: 'e', data: 'new' });
      // History of the old layout is not carried over: a new epoch from offset 1.
      expect(first).toMatchObject({ offset: 1 });
      expect(first.epoch).not.toBe('old-epoch');
      await bus.close();
      await dropAmqpNamespace(url, ns);
      expect(await queueExists(conn, old.token)).toBe(false);
      expect(await queueExists(conn, old.stream)).toBe(false);
      expect(await queueExists(conn, logNames(ns, 'room:old').token)).toBe(false);
    } finally {
      await conn.close();
    }
  });
});
