import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsBus, streamName, token } from '../../src/bus/nats.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/processes.js';
import {
  busOpener,
  collect,
  describeBusConformance,
  expectCatchUpAfterCut,
  expectRacingOffsets,
  sleep,
} from './bus-suite.js';

const skip = await engineSkipReason('nats');
const namespace = `test-${randomUUID().slice(0, 8)}`;
const url = ENGINE_URLS.nats;
const target = new URL(url);

afterAll(async () => {
  if (skip) return;
  const nc = await connect({ servers: `${target.hostname}:${target.port || 4222}` });
  const jsm = await nc.jetstreamManager();
  for (const ns of [namespace, `${namespace}-other`, `${namespace}-legacy`])
    await jsm.streams.delete(streamName(ns)).catch(() => false);
  await nc.close();
});

describeBusConformance(
  'nats',
  {
    connect: (options) => natsBus({ url, namespace, ...options }),
    connectDown: () => natsBus({ url: 'nats://127.0.0.1:1', namespace, timeoutMs: 300 }),
    async dropNamespace(ns) {
      const nc = await connect({ servers: `${target.hostname}:${target.port || 4222}` });
      await (await nc.jetstreamManager()).streams.delete(streamName(ns)).catch(() => false);
      await nc.close();
    },
  },
  skip,
);

describe.skipIf(skip !== undefined)('nats bus specifics', () => {
  const open = busOpener((extra: Partial<Parameters<typeof natsBus>[0]>) => natsBus({ url, namespace, ...extra }));
  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connect({ servers: `${target.hostname}:${target.port || 4222}` });
  });
  afterAll(async () => {
    await nc.close();
  });
  const channel = () => `c-${randomUUID()}`;

  it('says, when nothing accepts connections, where and to start nats-server or correct the URL', async () => {
    const port = await freePort();
    const bus = await open({ url: `nats://shoal:secret-pass@127.0.0.1:${port}`, timeoutMs: 1000 });
    const err = (await bus.ping().catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(
      `message bus nats (nats://127.0.0.1:${port}): ping failed: no connection could be made: nothing accepts connections there (CONNECTION_REFUSED). ` +
        'Start nats-server there with JetStream (nats-server -js), or correct the host and port in the bus URL.',
    );
    expect(err.message).not.toContain('secret-pass');
  });

  it('encodes channel names into single, distinct subject tokens', () => {
    const names = ['a', 'a.b', 'a*', 'a>', 'a b', 'ü', 'a=2E', '', '=', 'user:42'];
    const tokens = names.map(token);
    expect(new Set(tokens).size).toBe(names.length);
    for (const t of tokens) expect(t).toMatch(/^[A-Za-z0-9_:=-]+$/);
    expect(token('user:42')).toBe('user:42');
  });

  it('gives strictly consecutive offsets to 4 clients racing on one channel', async () => {
    await expectRacingOffsets(open, channel());
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

  it('subscribes to 300 channels without a JetStream consumer, and delivers on each of them', async () => {
    const ns = `${namespace}-other`;
    const sub = await open({ namespace: ns });
    const pub = await open({ namespace: ns });
    const got = collect(sub);
    const channels = Array.from({ length: 300 }, channel);
    for (const ch of channels) await sub.subscribe(ch);
    const jsm = await nc.jetstreamManager();
    expect((await jsm.streams.info(streamName(ns))).state.consumer_count).toBe(0);
    const sent = await Promise.all(channels.map((ch) => pub.publish(ch, { event: 'e', data: ch })));
    await eventually(() => got.length === sent.length, { message: () => `got ${got.length}/${sent.length}` });
    expect(new Set(got.map((m) => m.data))).toEqual(new Set(channels));
    expect((await jsm.streams.info(streamName(ns))).state.consumer_count).toBe(0);
  });

  it('still delivers on a stream made without republish (by an older version), one consumer per channel', async () => {
    const ns = `${namespace}-legacy`;
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: streamName(ns), subjects: [`shoal.${token(ns)}.>`], max_msgs_per_subject: 1001 });
    try {
      const sub = await open({ namespace: ns });
      const pub = await open({ namespace: ns });
      const got = collect(sub);
      const ch = channel();
      await sub.subscribe(ch);
      expect((await jsm.streams.info(streamName(ns))).state.consumer_count).toBe(1);
      const sent = [await pub.publish(ch, { event: 'e', data: '1' }), await pub.publish(ch, { event: 'e', data: '2' })];
      await eventually(() => got.length === 2);
      expect(got).toEqual(sent);
    } finally {
      await jsm.streams.delete(streamName(ns)).catch(() => false);
    }
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
    'loses nothing published while the subscriber connection is cut: it reads what it missed from the stream',
    () =>
      expectCatchUpAfterCut(
        url,
        { subscriber: (via) => open({ url: via, timeoutMs: 1000 }), publisher: () => open() },
        15_000,
      ),
    30_000,
  );
});
