import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { postgresStore } from '../../src/stores/postgres.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { faultProxy, targetOf, viaProxy } from '../helpers/fault-proxy.js';
import { describeStoreConformance, sessionFixture, storeOpener } from './store-suite.js';

const skip = await engineSkipReason('postgres');
const url = ENGINE_URLS.postgres;
const run = randomBytes(4).toString('hex');
const table = `shoal_test_${run}`;
const tables = [table, `${table}_race`, `${table}_proxy`, `${table}_earlier`];

afterAll(async () => {
  if (skip) return;
  const admin = new pg.Pool({ connectionString: url, max: 1 });
  for (const t of tables) {
    await admin.query(`DROP TABLE IF EXISTS "${t}", "${t}_locks"; DROP SEQUENCE IF EXISTS "${t}_fencing"`);
  }
  await admin.end();
});

describeStoreConformance(
  'postgres',
  {
    connect: () => postgresStore({ url, table }),
    connectDown: () => postgresStore({ url: 'postgres://postgres@127.0.0.1:1/test', table, timeoutMs: 500 }),
  },
  skip,
);

describe.skipIf(skip !== undefined)('postgres store specifics', () => {
  const open = storeOpener((options: Parameters<typeof postgresStore>[0]) => postgresStore({ url, table, ...options }));
  const hour = () => Date.now() + 3_600_000;

  it('creates the schema once when three processes start at the same moment', async () => {
    const stores = await Promise.all([1, 2, 3].map(() => open({ table: `${table}_race` })));
    await Promise.all(stores.map((s) => s.ping()));
    const s = sessionFixture();
    expect(await stores[0]?.create(s)).toBe(true);
    expect(await stores[2]?.load(s.id, Date.now())).not.toBeNull();
  });

  it('adds the columns a table made by an earlier version lacks, and serves the sessions it holds', async () => {
    const earlier = `${table}_earlier`;
    const t = Date.now();
    const id = sessionFixture().id;
    const admin = new pg.Pool({ connectionString: url, max: 1 });
    try {
      // The session table as the first version created it, with one of its sessions.
      await admin.query(`CREATE TABLE "${earlier}" (
        namespace text NOT NULL, id text NOT NULL, attributes jsonb NOT NULL DEFAULT '{}',
        created_at bigint NOT NULL, last_seen_at bigint NOT NULL, idle_deadline bigint NOT NULL,
        absolute_deadline bigint NOT NULL,
        ends_at bigint GENERATED ALWAYS AS (least(idle_deadline, absolute_deadline)) STORED,
        user_id text, rev bigint NOT NULL, client text,
        ended_reason text CHECK (ended_reason IN ('idle-timeout', 'absolute-timeout', 'destroyed')),
        claim_until bigint, attempt integer NOT NULL DEFAULT 0, PRIMARY KEY (namespace, id))`);
      await admin.query(
        `INSERT INTO "${earlier}" (namespace, id, attributes, created_at, last_seen_at, idle_deadline, absolute_deadline, user_id, rev)
         VALUES ('session', $1, '{"a":"1"}', $2, $2, $3, $4, 'ann', 1)`,
        [id, t, t + 3_600_000, t + 7_200_000],
      );
      const [store, second] = await Promise.all([open({ table: earlier }), open({ table: earlier })]);
      const loaded = await second.load(id, t);
      expect(loaded?.attributes).toEqual({ a: '1' });
      expect(loaded?.meta).toMatchObject({ userId: 'ann', idleDeadline: t + 3_600_000 });
      expect(loaded?.meta.idleMs).toBeUndefined();
      // Without an idle length of its own, the caller's deadline applies, as it did.
      await store.commit(id, { set: { b: '2' } }, { now: t + 10, idleDeadline: t + 500 });
      expect((await second.load(id, t + 10))?.meta.idleDeadline).toBe(t + 500);
      await store.commit(
        id,
        { lifetime: { idleMs: 3_600_000, absoluteMs: 10_800_000 } },
        { now: t + 20, idleDeadline: t + 500 },
      );
      expect((await second.load(id, t + 1000))?.meta).toMatchObject({
        idleMs: 3_600_000,
        absoluteDeadline: t + 10_800_000,
      });
      const { rows } = await admin.query(
        `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = $1 AND column_name = 'idle_ms'`,
        [earlier],
      );
      expect(rows[0]?.n).toBe(1);
    } finally {
      await admin.end();
    }
  });

  it('keeps the "session" and "client" namespaces apart in one table', async () => {
    const session = await open({ namespace: 'session' });
    const client = await open({ namespace: 'client' });
    const s = sessionFixture({}, { scope: '"session"' });
    expect(await session.create(s)).toBe(true);
    expect(await client.load(s.id, Date.now())).toBeNull();
    expect(await client.create({ ...s, attributes: { scope: '"client"' } })).toBe(true);
    expect((await session.load(s.id, Date.now()))?.attributes.scope).toBe('"session"');
    expect((await client.load(s.id, Date.now()))?.attributes.scope).toBe('"client"');
  });

  it('returns incremented values as JavaScript prints them, and rejects JSON that is not a number', async () => {
    const store = await open();
    const s = sessionFixture({}, { half: '3', exp: '1e3', big: '4000000000000000', s: '"5"' });
    await store.create(s);
    const r = await store.commit(
      s.id,
      { incr: { half: 0.5, exp: 1, big: 1, neg: -2.25 } },
      { now: Date.now(), idleDeadline: hour() },
    );
    expect(r).toEqual({
      status: 'ok',
      rev: 2,
      values: { half: '3.5', exp: '1001', big: '4000000000000001', neg: '-2.25' },
    });
    const bad = await store.commit(s.id, { incr: { half: 1, s: 1 } }, { now: Date.now(), idleDeadline: hour() });
    expect(bad).toEqual({ status: 'not-a-number', key: 's' });
  });

  it('close() leaves a pool it was given open', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    const store = await postgresStore({ pool, table });
    await store.ping();
    await store.close();
    expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one).toBe(1);
    await pool.end();
  });

  it('fails within the timeout while the server stalls or is gone, and recovers when it is back', async () => {
    const proxy = await faultProxy(targetOf(url));
    const store = await open({
      url: viaProxy(url, proxy),
      table: `${table}_proxy`,
      timeoutMs: 800,
    });
    const s = sessionFixture();
    expect(await store.create(s)).toBe(true);

    const failsQuickly = async () => {
      const started = Date.now();
      await expect(store.load(s.id, Date.now())).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(800 + 400);
    };
    proxy.blackhole(); // pooled connection open, no answers: the query timeout must fire
    await failsQuickly();
    await proxy.down(); // connection refused
    await failsQuickly();
    await proxy.up();
    proxy.clear();
    expect((await store.load(s.id, Date.now()))?.id).toBe(s.id);
    await store.close();
    await proxy.close();
  });
});
