import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, StoreUnavailableError } from '../../src/core/errors.js';
import { sqliteStore } from '../../src/stores/sqlite.js';
import { describeStoreConformance, sessionFixture, storeOpener } from './store-suite.js';

// A directory that does not exist yet: the store must create it.
const dir = join(tmpdir(), `shoal-sqlite-${randomUUID()}`);
const path = join(dir, 'nested', 'shoal.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each connect opens its own connection to the same file, as separate processes would.
describeStoreConformance('sqlite', { connect: () => sqliteStore({ path }) });

describe('sqlite store specifics', () => {
  const open = storeOpener((options: Partial<Parameters<typeof sqliteStore>[0]>) => sqliteStore({ path, ...options }));
  const HOUR = 3_600_000;

  it('keeps namespaces apart in one file', async () => {
    const [sessions, clients] = [await open({ namespace: 'session' }), await open({ namespace: 'client' })];
    const s = sessionFixture({}, { a: '1' });
    expect(await sessions.create(s)).toBe(true);
    expect(await clients.load(s.id, Date.now())).toBeNull();
    expect(await clients.create(s)).toBe(true);
    await clients.commit(s.id, { set: { a: '2' } }, { now: Date.now(), idleDeadline: Date.now() + HOUR });
    expect((await sessions.load(s.id, Date.now()))?.attributes.a).toBe('1');
  });

  it('keeps an attribute named __proto__ as data', async () => {
    const store = await open();
    const s = sessionFixture();
    await store.create(s);
    const set = JSON.parse('{"__proto__":"1","x":"2"}') as Record<string, string>;
    const incr = JSON.parse('{"__proto__":1}') as Record<string, number>;
    const r = await store.commit(s.id, { set, incr }, { now: Date.now(), idleDeadline: Date.now() + HOUR });
    expect(r.status === 'ok' && Object.entries(r.values)).toEqual([['__proto__', '2']]);
    const loaded = await store.load(s.id, Date.now());
    expect(Object.entries(loaded?.attributes ?? {}).sort()).toEqual([
      ['__proto__', '2'],
      ['x', '2'],
    ]);
  });

  it('turns a write lock held past timeoutMs into StoreUnavailableError, within the timeout', async () => {
    const store = await open({ timeoutMs: 200 });
    const s = sessionFixture();
    await store.create(s);
    const holder = new Database(path);
    try {
      holder.exec('BEGIN IMMEDIATE');
      const started = Date.now();
      const failed = store.commit(s.id, { set: { a: '1' } }, { now: Date.now(), idleDeadline: Date.now() + HOUR });
      await expect(failed).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(failed).rejects.toThrow(/locked .* 200 ms/);
      expect(Date.now() - started).toBeLessThan(2000);
      // Readers are not blocked by a writer in WAL mode.
      expect(await store.load(s.id, Date.now())).not.toBeNull();
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect(
      (await store.commit(s.id, { set: { a: '1' } }, { now: Date.now(), idleDeadline: Date.now() + HOUR })).status,
    ).toBe('ok');
  });

  it('names the path and what to do when the directory cannot be created', async () => {
    const blocker = join(dir, 'a-file');
    mkdirSync(dir, { recursive: true });
    writeFileSync(blocker, 'not a directory');
    const bad = join(blocker, 'sub', 'shoal.db');
    const err = await sqliteStore({ path: bad }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(bad);
    expect((err as Error).message).toMatch(/SHOAL_STORE=sqlite:/);
  });

  it('refuses a file that is not a SQLite database with a ConfigError naming it', async () => {
    const junk = join(dir, 'junk.db');
    mkdirSync(dir, { recursive: true });
    writeFileSync(junk, 'this is not a database, just some text that is long enough to look like a header '.repeat(20));
    chmodSync(junk, 0o600);
    const err = await sqliteStore({ path: junk }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(junk);
  });

  it('rejects calls after close with StoreUnavailableError', async () => {
    const store = await sqliteStore({ path });
    await store.ping();
    await store.close();
    await expect(store.load(sessionFixture().id, Date.now())).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();
  });

  it('adds the columns a table made by an earlier version lacks, and serves the sessions it holds', async () => {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'earlier.db');
    const t = Date.now();
    const id = sessionFixture().id;
    // The session table as the first version created it, with one of its sessions.
    const earlier = new Database(file);
    earlier.exec(`CREATE TABLE shoal_sessions (
      namespace TEXT NOT NULL, id TEXT NOT NULL, attributes TEXT NOT NULL, created_at INTEGER NOT NULL,
      last_seen_at INTEGER NOT NULL, idle_deadline INTEGER NOT NULL, absolute_deadline INTEGER NOT NULL,
      ends_at INTEGER NOT NULL, user_id TEXT, rev INTEGER NOT NULL, client TEXT, ended_reason TEXT,
      claim_until INTEGER, attempt INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (namespace, id))`);
    earlier
      .prepare(
        `INSERT INTO shoal_sessions (namespace, id, attributes, created_at, last_seen_at, idle_deadline,
          absolute_deadline, ends_at, user_id, rev, client) VALUES ('session', ?, '{"a":"1"}', ?, ?, ?, ?, ?, 'ann', 1, NULL)`,
      )
      .run(id, t, t, t + HOUR, t + 2 * HOUR, t + HOUR);
    earlier.close();
    const [store, second] = [await open({ path: file }), await open({ path: file })];
    const loaded = await second.load(id, t);
    expect(loaded?.attributes).toEqual({ a: '1' });
    expect(loaded?.meta).toMatchObject({ userId: 'ann', idleDeadline: t + HOUR, absoluteDeadline: t + 2 * HOUR });
    expect(loaded?.meta.idleMs).toBeUndefined();
    // Without an idle length of its own, the caller's deadline applies, as it did.
    await store.commit(id, { set: { b: '2' } }, { now: t + 10, idleDeadline: t + 500 });
    expect((await second.load(id, t + 10))?.meta.idleDeadline).toBe(t + 500);
    await store.commit(
      id,
      { lifetime: { idleMs: HOUR, absoluteMs: 3 * HOUR } },
      { now: t + 20, idleDeadline: t + 500 },
    );
    expect((await second.load(id, t + 1000))?.meta).toMatchObject({ idleMs: HOUR, absoluteDeadline: t + 3 * HOUR });
    const columns = new Database(file, { readonly: true });
    try {
      const names = (columns.prepare('PRAGMA table_info(shoal_sessions)').all() as { name: string }[]).map(
        (c) => c.name,
      );
      expect(names.filter((n) => n === 'idle_ms')).toEqual(['idle_ms']);
    } finally {
      columns.close();
    }
  });

  it('works on a private in-memory database', async () => {
    const store = await open({ path: ':memory:' });
    expect(store.capabilities.shared).toBe(false);
    const s = sessionFixture();
    expect(await store.create(s)).toBe(true);
    expect(
      (await store.commit(s.id, { incr: { n: 2 } }, { now: Date.now(), idleDeadline: Date.now() + HOUR })).status,
    ).toBe('ok');
    expect((await store.load(s.id, Date.now()))?.attributes.n).toBe('2');
  });
});
