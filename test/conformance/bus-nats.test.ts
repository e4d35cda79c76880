import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/contract.js';
import { natsBus, streamName, token } from '../../src/bus/nats.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { describeBusConformance, expectCatchUpAfterCut, sleep } from './bus-suite.js';

const skip = await engineSkipReason('nats');
const namespace = `test-${randomUUID().slice(0, 8)}`;
const url = ENGINE_URLS.nats;
const target = new URL(url);

afterAll(async () => {
  if (skip) return;
  const nc = await connect({ servers: `${target.hostname}:${target.port || 4222}` });
  const jsm = await nc.jetstreamManager();
  for (const ns of [namespace, `${namespace}-other`]) await jsm.streams.delete(streamName(ns)).catch(() => false);
  await nc.close();
});

describeBusConformance(
  'nats',
  {
    connect: (options) => natsBus({ url, namespace, ...options }),
    connectDown: () => natsBus({ url: 'nats://127.0.0.1:1', namespace, timeoutMs: 300 }),
  },
  skip,
);

describe.skipIf(skip !== undefined)('nats bus specifics', () => {
  const opened: Bus[] = [];
  const open = async (extra: Partial<Parameters<typeof natsBus>[0]> = {}) => {
    const bus = await natsBus({ url, namespace, ...extra });
    opened.push(bus);
    return bus;
  };
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connect({ servers: `${target.hostname}:${target.port || 4222}` });
  });
  afterAll(async () => {
    await Promise.allSettled(opened.map((b) => b.close()));
    await nc.close();
  });
  const channel = () => `c-${randomUUID()}`;

  it('encodes channel names into single, distinct subject tokens', () => {
    const names = ['a', 'a.b', 'a*', 'a>', 'a b', 'ü', 'a=2E', '', '=', 'user:42'];
    const tokens = names.map(token);
    expect(new Set(tokens).size).toBe(names.length);
    for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9_:=-]+$/);
    expect(token('user:42')).toBe('user:42');
  });

  it('gives strictly consecutive offsets to 4 clients racing on one channel', async () => {
    const buses = await Promise.all(Array.from({ length: 4 }, () => open()));
    const ch = channel();
    const sent: BusMessage[] = [];
    await Promise.all(
      buses.map(async (bus, who) => {
        for (let i = 0; i < 25; i++) sent.push(await bus.publish(ch, { event: 'e', data: `${who}:${i}` }));
      }),
    );
    expect(sent.map((m) => m.offset).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const read = await buses[0]?.read(ch, 0);
    expect(read?.messages.map((m) => m.data).sort()).toEqual(sent.map((m) => m.data).sort());
  });

  it('makes the stream again when it is deleted, under a new epoch', async () => {
    const ns = `${namespace}-other`;
    const bus = await open({ namespace: ns });
    const ch = channel();
    const first = await bus.publish(ch, { event: 'e', data: '1' });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(streamName(ns));
    // The same client notices, makes the stream again, and the channel's log starts over.
    const after = await bus.read(ch, 1, { epoch: first.epoch });
    expect(after).toMatchObject({ messages: [], complete: false });
    expect(after.epoch).not.toBe(first.epoch);
    const other = await open({ namespace: ns });
    expect(await other.publish(ch, { event: 'e', data: '2' })).toMatchObject({ epoch: after.epoch, offset: 1 });
    expect(await bus.publish(ch, { event: 'e', data: '3' })).toMatchObject({ epoch: after.epoch, offset: 2 });
  });

  it('forgets a channel idle past historyTtlMs: it resumes under a new epoch', async () => {
    const ns = `${namespace}-other`;
    const bus = await open({ namespace: ns, historyTtlMs: 1000 });
    const jsm = await nc.jetstreamManager();
    // Another client already made the stream with a longer TTL; force the short one for this test.
    const info = await jsm.streams.info(streamName(ns));
    await jsm.streams.update(streamName(ns), { ...info.config, max_age: 1e9, duplicate_window: 1e9 });
    const ch = channel();
    const sent = await bus.publish(ch, { event: 'e', data: '1' });
    await sleep(1600);
    const r = await bus.read(ch, 1, { epoch: sent.epoch });
    expect(r.complete).toBe(false);
    expect(r.epoch).not.toBe(sent.epoch);
  });

  it(
    'loses nothing published while the subscriber connection is cut: the ordered consumer resumes',
    () =>
      expectCatchUpAfterCut(
        url,
        { subscriber: (via) => open({ url: via, timeoutMs: 1000 }), publisher: () => open() },
        15_000,
      ),
    30_000,
  );
});
