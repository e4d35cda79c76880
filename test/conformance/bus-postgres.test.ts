import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { BusMessage } from '../../src/bus/contract.js';
import { postgresBus } from '../../src/bus/postgres.js';
import { ConfigError } from '../../src/core/errors.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { busOpener, collect, describeBusConformance, expectNamespacesApart } from './bus-suite.js';

const skip = await engineSkipReason('postgres');
const url = ENGINE_URLS.postgres;
const run = randomBytes(4).toString('hex');
const table = `shoal_bus_test_${run}`;
const tables = [table, `${table}_race`];
const namespace = `test-${run}`;

afterAll(async () => {
  if (skip) return;
  const admin = new pg.Pool({ connectionString: url, max: 1 });
  for (const t of tables) await admin.query(`DROP TABLE IF EXISTS "${t}_log", "${t}_channels"`);
  await admin.end();
});

describeBusConformance(
  'postgres',
  {
    connect: (options) => postgresBus({ url, table, namespace, ...options }),
    connectDown: () => postgresBus({ url: 'postgres://postgres@127.0.0.1:1/test', table, timeoutMs: 500 }),
  },
  skip,
);

describe.skipIf(skip !== undefined)('postgres bus specifics', () => {
  const open = busOpener((options: Partial<Parameters<typeof postgresBus>[0]>) =>
    postgresBus({ url, table, namespace, ...options }),
  );
  const channel = () => `c-${randomUUID()}`;

  it('misses nothing when its LISTEN connection is killed: reconnects and re-reads from the last offset', async () => {
    const ns = `${namespace}-kill`;
    const [pub, sub] = [await open({ namespace: ns }), await open({ namespace: ns })];
    const got = collect(sub);
    const ch = channel();
    await sub.subscribe(ch);
    const sent: BusMessage[] = [await pub.publish(ch, { event: 'e', data: '0' })];
    await eventually(() => got.length >= 1);

    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const killed = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [`shoal-bus ${ns}`],
      );
      expect(killed.rowCount).toBe(1);
    } finally {
      await admin.end();
    }
    // Published while the listener is down or reconnecting.
    for (let i = 1; i <= 50; i++) sent.push(await pub.publish(ch, { event: 'e', data: String(i) }));
    await eventually(() => got.length >= sent.length, { timeoutMs: 15_000 });
    expect(got).toEqual(sent);
    // And live delivery goes on over the new connection.
    sent.push(await pub.publish(ch, { event: 'e', data: 'after' }));
    await eventually(() => got.length >= sent.length);
    expect(got).toEqual(sent);
  }, 30_000);

  it('creates the schema once when three processes start at the same moment', async () => {
    const buses = await Promise.all([1, 2, 3].map(() => open({ table: `${table}_race` })));
    await Promise.all(buses.map((b) => b.ping()));
    const ch = channel();
    const sent = await buses[0]?.publish(ch, { event: 'e', data: '1' });
    expect((await buses[2]?.read(ch, 0))?.messages).toEqual([sent]);
  });

  it('keeps namespaces apart in one table', async () => {
    await expectNamespacesApart(
      await open({ namespace: `${namespace}-a` }),
      await open({ namespace: `${namespace}-b` }),
      150,
    );
  });

  it('delivers across connections with a low latency (prints p50/p99)', async () => {
    const [pub, sub] = [await open(), await open()];
    const got: { m: BusMessage; at: number }[] = [];
    sub.onMessage((m) => got.push({ m, at: Date.now() }));
    const ch = channel();
    await sub.subscribe(ch);
    for (let i = 0; i < 300; i++) await pub.publish(ch, { event: 'e', data: String(i) });
    await eventually(() => got.length >= 300, { timeoutMs: 15_000 });
    expect(got.map((g) => g.m.offset)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    const latency = got.map((g) => g.at - g.m.publishedAt).sort((a, b) => a - b);
    const pct = (p: number) => latency[Math.min(latency.length - 1, Math.floor((p / 100) * latency.length))] ?? 0;
    console.info(`[bus postgres] publish→deliver latency: p50 ${pct(50)} ms, p99 ${pct(99)} ms`);
    expect(pct(99)).toBeLessThan(1000);
  }, 30_000);

  it('refuses a table name that is not a plain identifier, and a missing url', async () => {
    await expect(postgresBus({ url, table: 'x"; DROP TABLE y; --' })).rejects.toBeInstanceOf(ConfigError);
    await expect(postgresBus({})).rejects.toBeInstanceOf(ConfigError);
  });
});
