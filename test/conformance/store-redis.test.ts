import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, StoreUnavailableError } from '../../src/core/errors.js';
import { redisStore } from '../../src/stores/redis.js';
import { ENGINE_URLS, engineSkipReason, redisUrlWithDatabase } from '../helpers/engines.js';
import { faultProxy, targetOf, viaProxy } from '../helpers/fault-proxy.js';
import { freePort } from '../helpers/processes.js';
import { deleteKeys, scanKeys } from '../helpers/redis-keys.js';
import { describeStoreConformance, sessionFixture, storeOpener } from './store-suite.js';

const skip = await engineSkipReason('redis');
const keyPrefix = `shoal-test-${randomUUID().slice(0, 8)}`;
const HOUR = 3_600_000;

describeStoreConformance(
  'redis',
  {
    connect: () => redisStore({ url: ENGINE_URLS.redis, keyPrefix }),
    connectDown: () => redisStore({ url: 'redis://127.0.0.1:1', keyPrefix, timeoutMs: 300 }),
  },
  skip,
);

describe.skipIf(skip !== undefined)('redis store specifics', () => {
  // Lazy: a skipped suite must not open (and keep retrying) a connection.
  const raw = new Redis(ENGINE_URLS.redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
  afterAll(async () => {
    await deleteKeys(raw, `${keyPrefix}*`, { count: 500 });
    await raw.quit();
  });
  // Registered after the cleanup above, so its afterAll (closing the stores) runs before it.
  const open = storeOpener((extra: Parameters<typeof redisStore>[0]) =>
    redisStore({ url: ENGINE_URLS.redis, keyPrefix, ...extra }),
  );
  const keysOf = async (id: string) => {
    return scanKeys(raw, `${keyPrefix}*:s:${id}`);
  };

  it('keeps attributes named like meta fields apart from the meta', async () => {
    const store = await open();
    const s = sessionFixture({}, { 'm:rev': '"x"', 'm:ended': '"destroyed"', 'a:b': '1', 'm:user': '"eve"' });
    expect(await store.create(s)).toBe(true);
    const r = await store.commit(
      s.id,
      { set: { 'm:idle': '0', 'm:abs': '0' }, incr: { 'm:rev': 0, 'a:b': 1 }, del: ['m:user'] },
      { now: Date.now(), idleDeadline: Date.now() + HOUR },
    );
    expect(r).toEqual({ status: 'not-a-number', key: 'm:rev' });
    const ok = await store.commit(
      s.id,
      { set: { 'm:idle': '0', 'm:abs': '0' }, incr: { 'a:b': 1 }, del: ['m:user'] },
      { now: Date.now(), idleDeadline: Date.now() + HOUR },
    );
    expect(ok).toEqual({ status: 'ok', rev: 2, values: { 'a:b': '2' } });
    const loaded = await store.load(s.id, Date.now());
    expect(loaded?.meta.rev).toBe(2);
    expect(loaded?.meta.userId).toBeNull();
    expect(loaded?.attributes).toEqual({
      'm:rev': '"x"',
      'm:ended': '"destroyed"',
      'a:b': '2',
      'm:idle': '0',
      'm:abs': '0',
    });
  });

  it('returns incremented values as JSON numbers, like String(number) in JS', async () => {
    const store = await open();
    const s = sessionFixture({}, { f: '0.1', big: '9007199254740000', neg: '-3', tiny: '1e-7', spaced: ' 4 ' });
    await store.create(s);
    const incr = { f: 0.2, big: 991, neg: 3, tiny: 0, spaced: 0.5, fresh: -2.25 };
    const r = await store.commit(s.id, { incr }, { now: Date.now(), idleDeadline: Date.now() + HOUR });
    expect(r).toEqual({
      status: 'ok',
      rev: 2,
      values: {
        f: '0.30000000000000004',
        big: '9007199254740991',
        neg: '0',
        tiny: '1e-7',
        spaced: '4.5',
        fresh: '-2.25',
      },
    });
    if (r.status === 'ok') for (const v of Object.values(r.values)) expect(typeof JSON.parse(v)).toBe('number');
    for (const bad of ['"1"', 'true', '', 'null', '[1]', '1e999']) {
      await store.commit(s.id, { set: { bad } }, { now: Date.now(), idleDeadline: Date.now() + HOUR });
      const refused = await store.commit(
        s.id,
        { incr: { bad: 1 } },
        { now: Date.now(), idleDeadline: Date.now() + HOUR },
      );
      expect(refused, `incr of ${bad}`).toEqual({ status: 'not-a-number', key: 'bad' });
    }
  });

  it('keeps data a grace period past the end and no longer', async () => {
    const store = await open({ graceMs: 60_000 });
    const t = Date.now();
    const s = sessionFixture({ idleDeadline: t + 10_000 });
    await store.create(s);
    const [key] = await keysOf(s.id);
    expect(key).toMatch(new RegExp(`^${keyPrefix}:\\{session:\\d+\\}:s:`));
    const ttl = await raw.pttl(key ?? '');
    expect(ttl).toBeGreaterThan(60_000);
    expect(ttl).toBeLessThanOrEqual(70_000);
    await store.destroy(s.id, t);
    expect(await raw.pttl(key ?? '')).toBeLessThanOrEqual(60_000);
    await store.ackEnded(s.id);
    expect(await raw.exists(key ?? '')).toBe(0);
  });

  it('puts every key of one session under one hash tag, per namespace', async () => {
    const prefix = `${keyPrefix}-tags`;
    const a = await open({ keyPrefix: prefix, namespace: 'client', buckets: 4 });
    const user = `u-${randomUUID()}`;
    const s = sessionFixture({ userId: user });
    await a.create(s);
    await a.commit(s.id, { incr: { n: 1 } }, { now: Date.now(), idleDeadline: Date.now() + HOUR });
    await a.acquireLock(s.id, 'n', 'o', 10_000);
    const keys = await scanKeys(raw, `${prefix}:*`);
    const tags = new Set(keys.filter((k) => !k.includes(':u:')).map((k) => k.match(/^[^{]*\{([^}]*)\}/)?.[1]));
    expect([...tags]).toHaveLength(1);
    expect([...tags][0]).toMatch(/^client:[0-3]$/);
    expect(keys.filter((k) => k.includes(':u:'))).toEqual([`${prefix}:client:u:{${user}}`]);
    expect(keys.length).toBe(5); // session hash, due index, lock, fencing counter, user set
    expect((await a.listByUser(user, Date.now())).map((x) => x.id)).toEqual([s.id]);
  });

  it('claims ended sessions of every bucket with one script call on a single server', async () => {
    const prefix = `${keyPrefix}-claim`;
    const store = await open({ keyPrefix: prefix, buckets: 16 });
    const t = Date.now();
    const ended = Array.from({ length: 40 }, () => sessionFixture({ idleDeadline: t - 1000 }));
    for (const s of ended) await store.create(s);
    const buckets = new Set((await scanKeys(raw, `${prefix}:*:due`)).map((k) => k));
    expect(buckets.size).toBeGreaterThan(8); // 40 ids spread over most of the 16 buckets
    // MONITOR on its own connection sees every command the store sends while it claims.
    const monitor = await startMonitor(raw);
    const scripts: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (/^(evalsha|eval)$/i.test(args[0] ?? '') && args.some((a) => a.startsWith(`${prefix}:`))) scripts.push(args);
    });
    try {
      const claimed = await store.claimEnded({ now: t, limit: 1000, leaseMs: 30_000, owner: 'test' });
      expect(claimed.map((e) => e.snapshot.id).sort()).toEqual(ended.map((s) => s.id).sort());
      expect(claimed.every((e) => e.reason === 'idle-timeout' && e.attempt === 1)).toBe(true);
      // Nothing more is due: the claimed ones are leased.
      expect(await store.claimEnded({ now: t, limit: 1000, leaseMs: 30_000, owner: 'test' })).toEqual([]);
      await new Promise((r) => setTimeout(r, 100)); // MONITOR lines arrive after the replies
      expect(scripts).toHaveLength(2);
      expect(Number(scripts[0]?.[2])).toBe(16); // every bucket's due key in the one call
    } finally {
      monitor.disconnect();
    }
  });

  it('drops index members whose session is gone, keeps the others', async () => {
    const store = await open();
    const user = `u-${randomUUID()}`;
    const s = sessionFixture({ userId: user });
    const moved = sessionFixture({ userId: user });
    const dead = sessionFixture({ userId: user });
    for (const x of [s, moved, dead]) await store.create(x);
    await store.commit(moved.id, { userId: 'other' }, { now: Date.now(), idleDeadline: Date.now() + HOUR });
    await store.destroy(dead.id, Date.now());
    expect((await store.listByUser(user, Date.now())).map((x) => x.id)).toEqual([s.id]);
    const [userKey] = await scanKeys(raw, `${keyPrefix}:*:u:{${user}}`);
    expect((await raw.smembers(userKey ?? '')).sort()).toEqual([s.id, moved.id].sort());
    expect(await raw.pttl(userKey ?? '')).toBeGreaterThan(HOUR);
  });

  it('a lifetime that moves the absolute deadline keeps the user index, and the hash, as long as the session', async () => {
    const store = await open();
    const user = `u-${randomUUID()}`;
    const t = Date.now();
    const s = sessionFixture({ userId: user, createdAt: t, idleDeadline: t + 1000, absoluteDeadline: t + 2000 });
    await store.create(s);
    const r = await store.commit(
      s.id,
      { lifetime: { idleMs: 30 * 24 * HOUR, absoluteMs: 90 * 24 * HOUR } },
      { now: t, idleDeadline: t + 1000 },
    );
    expect(r.status).toBe('ok');
    const [userKey] = await scanKeys(raw, `${keyPrefix}:*:u:{${user}}`);
    expect(await raw.pttl(userKey ?? '')).toBeGreaterThan(89 * 24 * HOUR);
    const [hashKey] = await keysOf(s.id);
    expect(await raw.pttl(hashKey ?? '')).toBeGreaterThan(29 * 24 * HOUR);
    expect(await raw.hget(hashKey ?? '', 'm:life')).toBe(String(30 * 24 * HOUR));
    expect((await store.listByUser(user, t + 5000)).map((x) => x.meta.idleMs)).toEqual([30 * 24 * HOUR]);
  });

  it('reloads its scripts after SCRIPT FLUSH', async () => {
    const store = await open();
    const s = sessionFixture();
    await store.create(s);
    await raw.script('FLUSH');
    const r = await store.commit(s.id, { incr: { n: 1 } }, { now: Date.now(), idleDeadline: Date.now() + HOUR });
    expect(r.status).toBe('ok');
  });

  it('refuses a database the server does not have, instead of writing to database 0', async () => {
    const count = Number(((await raw.config('GET', 'databases')) as string[])[1]);
    const url = redisUrlWithDatabase(count);
    const err = await redisStore({ url, keyPrefix }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      `${url}: Redis refused database ${count} (ERR DB index is out of range); ` +
        `this server has ${count} databases (the "databases" setting in redis.conf): use 0–${count - 1}`,
    );
  });

  it('writes to the database its URL names', async () => {
    const count = Number(((await raw.config('GET', 'databases')) as string[])[1]);
    const db = count - 1;
    const store = await open({ url: redisUrlWithDatabase(db) });
    const s = sessionFixture();
    await store.create(s);
    const there = new Redis(redisUrlWithDatabase(db), { maxRetriesPerRequest: 1 });
    try {
      expect(await scanKeys(there, `${keyPrefix}*:s:${s.id}`)).toHaveLength(1);
      expect(await keysOf(s.id)).toEqual([]);
      await deleteKeys(there, `${keyPrefix}*`);
    } finally {
      await there.quit();
    }
  });

  it('leaves a client it was given open on close()', async () => {
    const client = new Redis(ENGINE_URLS.redis, { maxRetriesPerRequest: 1 });
    const store = await redisStore({ client, keyPrefix });
    await store.ping();
    await store.close();
    expect(await client.ping()).toBe('PONG');
    await client.quit();
  });

  it('times out commands on a connection it opened while Redis does not answer, then recovers', async () => {
    // The store's own deadline bounds each call from when it is made, queued behind others or not.
    const proxy = await faultProxy(targetOf(ENGINE_URLS.redis));
    const timeoutMs = 400;
    const store = await open({ url: viaProxy(ENGINE_URLS.redis, proxy), timeoutMs });
    const s = sessionFixture();
    expect(await store.create(s)).toBe(true);
    proxy.blackhole();
    const timed = async (op: () => Promise<unknown>) => {
      const started = Date.now();
      const err = await op().then(
        () => null,
        (e: unknown) => e,
      );
      return { err, ms: Date.now() - started };
    };
    const commit = () => store.commit(s.id, { incr: { n: 1 } }, { now: Date.now(), idleDeadline: Date.now() + HOUR });
    // A plain command and a script, sent together.
    const [load, script] = await Promise.all([timed(() => store.load(s.id, Date.now())), timed(commit)]);
    for (const r of [load, script]) {
      expect(r.err).toBeInstanceOf(StoreUnavailableError);
      expect((r.err as Error).message).toContain(`no answer within ${timeoutMs} ms`);
      // A server that holds the connection but does not answer may only be slow: more time may help.
      expect((r.err as Error).message).toContain('allow it more time with ?timeout= on the store URL');
      expect(r.ms).toBeGreaterThanOrEqual(timeoutMs - 20);
      expect(r.ms).toBeLessThan(timeoutMs + 300);
    }
    // One issued while an earlier pipeline is still unanswered: still within its own timeoutMs.
    const first = timed(() => store.load(s.id, Date.now()));
    await new Promise((r) => setTimeout(r, timeoutMs / 2));
    const queued = await timed(() => store.touch(s.id, Date.now(), Date.now() + HOUR));
    expect((await first).err).toBeInstanceOf(StoreUnavailableError);
    expect(queued.err).toBeInstanceOf(StoreUnavailableError);
    expect(queued.ms).toBeLessThan(timeoutMs + 300);
    proxy.clear();
    let after: Awaited<ReturnType<typeof commit>> | null = null;
    for (let i = 0; i < 50 && after?.status !== 'ok'; i++) {
      after = await commit().catch(() => null);
      if (after?.status !== 'ok') await new Promise((r) => setTimeout(r, 100));
    }
    expect(after?.status).toBe('ok');
    await proxy.close();
  });

  it('says to start Redis or correct the URL when nothing accepts connections, not to allow more time', async () => {
    const store = await open({ url: `redis://127.0.0.1:${await freePort()}`, timeoutMs: 300 });
    const err = await store.ping().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).message).toMatch(
      /ECONNREFUSED.*\. Start Redis there, or correct the host and port in the store URL\.$/,
    );
    expect((err as Error).message).not.toContain('?timeout=');
  });

  it('never sends later a write it answered as failed while Redis was unreachable', async () => {
    // A command made while the connection is down used to wait in ioredis's offline queue and go out
    // once Redis was back: a write answered 503 landed over a newer one answered 200 meanwhile.
    const proxy = await faultProxy(targetOf(ENGINE_URLS.redis));
    const cut = await open({ url: viaProxy(ENGINE_URLS.redis, proxy), timeoutMs: 500 });
    const direct = await open({});
    const s = sessionFixture();
    expect(await direct.create(s)).toBe(true);
    const setColor = (store: typeof direct, color: string) =>
      store.commit(
        s.id,
        { set: { color: JSON.stringify(color) } },
        { now: Date.now(), idleDeadline: Date.now() + HOUR },
      );
    expect((await cut.load(s.id, Date.now()))?.id).toBe(s.id);
    await proxy.down();
    // Long enough for ioredis to back off between attempts to connect: a command made then waits for
    // the next attempt, which comes after the call's 500 ms and finds Redis back.
    await new Promise((r) => setTimeout(r, 1_500));
    const failed = await Promise.all(
      Array.from({ length: 5 }, (_, i) => setColor(cut, `old-${i}`).catch((e: unknown) => e)),
    );
    for (const err of failed) expect(err).toBeInstanceOf(StoreUnavailableError);
    await proxy.up();
    expect((await setColor(direct, 'new')).status).toBe('ok');
    // The cut store connects again (its own calls succeed), then has every chance to send what it queued.
    let back = false;
    for (let i = 0; i < 50 && !back; i++) {
      back = (await cut.load(s.id, Date.now()).catch(() => null)) !== null;
      if (!back) await new Promise((r) => setTimeout(r, 100));
    }
    expect(back).toBe(true);
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await direct.load(s.id, Date.now()))?.attributes.color).toBe(JSON.stringify('new'));
    await proxy.close();
  });

  it('fails fast while Redis is unreachable and recovers by itself when it is back', async () => {
    const proxy = await faultProxy(targetOf(ENGINE_URLS.redis));
    const store = await open({ url: viaProxy(ENGINE_URLS.redis, proxy), timeoutMs: 500 });
    const s = sessionFixture();
    expect(await store.create(s)).toBe(true);
    await proxy.down();
    const started = Date.now();
    await expect(store.load(s.id, Date.now())).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.touch(s.id, Date.now(), Date.now() + HOUR)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(2_000);
    await proxy.up();
    let loaded = null;
    for (let i = 0; i < 50 && !loaded; i++) {
      loaded = await store.load(s.id, Date.now()).catch(() => null);
      if (!loaded) await new Promise((r) => setTimeout(r, 100));
    }
    expect(loaded?.id).toBe(s.id);
    await proxy.close();
  });
});

/**
 * A MONITOR connection of its own. Other test files' commands reaching it before the MONITOR's own OK
 * make ioredis fail it ("Command queue state error"): it is closed and another one tried.
 */
async function startMonitor(r: Redis): Promise<Redis> {
  for (let attempt = 1; ; attempt++) {
    // What ioredis's monitor() does, keeping the connection to close when it fails.
    const m = r.duplicate({ monitor: true, lazyConnect: false } as RedisOptions);
    try {
      await new Promise<void>((resolve, reject) => {
        m.once('error', reject);
        m.once('monitoring', () => resolve());
      });
      return m;
    } catch (err) {
      m.disconnect();
      if (attempt >= 5) throw err;
    }
  }
}
