import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisBus } from '../../src/bus/redis.js';
import { ConfigError } from '../../src/core/errors.js';
import { ENGINE_URLS, engineSkipReason, redisUrlWithDatabase } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { deleteKeys, scanKeys } from '../helpers/redis-keys.js';
import { busOpener, collect, describeBusConformance, expectCatchUpAfterCut, sleep } from './bus-suite.js';

const skip = await engineSkipReason('redis');
const namespace = `test-${randomUUID().slice(0, 8)}`;
const url = ENGINE_URLS.redis;

afterAll(async () => {
  if (skip) return;
  const raw = new Redis(url, { maxRetriesPerRequest: 1 });
  await deleteKeys(raw, `shoal:{${namespace}:*`);
  await raw.quit();
});

describeBusConformance(
  'redis',
  {
    connect: (options) => redisBus({ url, namespace, ...options }),
    connectDown: () => redisBus({ url: 'redis://127.0.0.1:1', namespace, timeoutMs: 300 }),
    async dropNamespace(ns) {
      const raw = new Redis(url, { maxRetriesPerRequest: 1 });
      await deleteKeys(raw, `shoal:{${ns}:*`);
      await raw.quit();
    },
  },
  skip,
);

describe.skipIf(skip !== undefined)('redis bus specifics', () => {
  const open = busOpener((extra: Partial<Parameters<typeof redisBus>[0]>) => redisBus({ url, namespace, ...extra }));
  const raw = new Redis(url, { maxRetriesPerRequest: 1 });
  afterAll(async () => {
    await raw.quit();
  });
  const channel = () => `c-${randomUUID()}`;

  it('refuses a database the server does not have, instead of publishing in database 0', async () => {
    const count = Number(((await raw.config('GET', 'databases')) as string[])[1]);
    const missing = redisUrlWithDatabase(count);
    const err = await redisBus({ url: missing, namespace }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      `${missing}: Redis refused database ${count} (ERR DB index is out of range); this server has ${count} databases`,
    );
  });

  it('keeps every key of a channel and its pub/sub channel under one hash tag', async () => {
    const bus = await open();
    const ch = channel();
    await bus.publish(ch, { event: 'e', data: '1' });
    const keys = await scanKeys(raw, `shoal:{${namespace}:${ch}}*`);
    expect(keys.sort()).toEqual(['epoch', 'lineage', 'log', 'seq'].map((k) => `shoal:{${namespace}:${ch}}:${k}`));
    expect(await raw.xlen(`shoal:{${namespace}:${ch}}:log`)).toBe(1);
    // Every key expires with the channel's history.
    for (const key of keys) expect(await raw.pttl(key)).toBeGreaterThan(0);
  });

  it('starts a new epoch when the log is lost (keys deleted, as after FLUSHALL or expiry)', async () => {
    const bus = await open();
    const ch = channel();
    const first = await bus.publish(ch, { event: 'e', data: '1' });
    await bus.publish(ch, { event: 'e', data: '2' });
    const keys = await scanKeys(raw, `shoal:{${namespace}:${ch}}*`);
    await raw.del(...keys);
    const after = await bus.read(ch, 2, { epoch: first.epoch });
    expect(after).toMatchObject({ messages: [], complete: false });
    expect(after.epoch).not.toBe(first.epoch);
    expect(await bus.publish(ch, { event: 'e', data: '3' })).toMatchObject({ epoch: after.epoch, offset: 1 });
  });

  it('expires history with historyTtlMs: an idle channel resumes under a new epoch', async () => {
    const bus = await open({ historyTtlMs: 200 });
    const ch = channel();
    const sent = await bus.publish(ch, { event: 'e', data: '1' });
    expect(await raw.pttl(`shoal:{${namespace}:${ch}}:log`)).toBeGreaterThan(0);
    await sleep(400);
    const r = await bus.read(ch, 1, { epoch: sent.epoch });
    expect(r.complete).toBe(false);
    expect(r.epoch).not.toBe(sent.epoch);
  });

  it(
    'loses nothing published while the subscriber connection is cut: it reconnects and catches up in order',
    () =>
      expectCatchUpAfterCut(
        url,
        { subscriber: (via) => open({ url: via, timeoutMs: 500 }), publisher: () => open() },
        10_000,
      ),
    30_000,
  );

  it('fills a gap from history when a live message arrives after one it never saw', async () => {
    const [pub, sub] = [await open(), await open()];
    const got = collect(sub);
    const ch = channel();
    await sub.subscribe(ch);
    // Appended behind pub/sub's back: only the history knows offsets 1..3.
    const keys = `shoal:{${namespace}:${ch}}`;
    const stored = await raw.get(`${keys}:epoch`);
    for (let i = 1; i <= 3; i++) {
      await raw.incr(`${keys}:seq`);
      await raw.xadd(`${keys}:log`, `${i}-0`, 't', Date.now(), 'e', 'quiet', 'd', String(i));
    }
    const loud = await pub.publish(ch, { event: 'loud', data: '4' });
    expect(loud.offset).toBe(4);
    // The epoch is the stored one qualified by the server's replication id (see ENSURE).
    const epoch = loud.epoch;
    expect(epoch.startsWith(`${stored}.`)).toBe(true);
    await eventually(() => got.length === 4);
    expect(got.map((m) => [m.offset, m.event, m.epoch])).toEqual([
      [1, 'quiet', epoch],
      [2, 'quiet', epoch],
      [3, 'quiet', epoch],
      [4, 'loud', epoch],
    ]);
  });
});
