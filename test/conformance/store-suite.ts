import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { newSessionId } from '../../src/core/ids.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { closedAfterAll } from '../helpers/opener.js';
import { sessionFixture } from '../helpers/session-fixture.js';

export { sessionFixture };

export interface StoreFixture {
  /** A new client of the same backend and namespace (same data as every other client). */
  connect(): Promise<SessionStore>;
  /** A client pointed at a backend that does not answer (for store-down errors). */
  connectDown?: () => Promise<SessionStore>;
  /** A client the suite may close without closing the others (default: connect). */
  connectOwn?: () => Promise<SessionStore>;
}

const HOUR = 3_600_000;

/**
 * Opens a driver's stores for a file's own tests (`open(extra)`) and closes every one of them after
 * the enclosing describe's tests. Call it inside the describe.
 */
export function storeOpener<O>(open: (extra: O) => Promise<SessionStore>): (extra?: O) => Promise<SessionStore> {
  return closedAfterAll(open);
}

/**
 * The one conformance suite every session store passes. A capability the store
 * does not declare skips its tests with the reason.
 */
export function describeStoreConformance(name: string, fixture: StoreFixture, skipReason?: string): void {
  describe.skipIf(skipReason !== undefined)(`store conformance: ${name}`, () => {
    const opened: SessionStore[] = [];
    const open = async () => {
      const store = await fixture.connect();
      opened.push(store);
      return store;
    };
    // Closed after each test: open clients hold connections, and test files run side by side on one server.
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });
    const now = () => Date.now();
    const later = () => Date.now() + HOUR;

    it('creates, loads, and refuses a second create with the same id', async () => {
      const store = await open();
      const s = sessionFixture({}, { a: '1' });
      expect(await store.create(s)).toBe(true);
      expect(await store.create(s)).toBe(false);
      const loaded = await store.load(s.id, now());
      expect(loaded?.attributes).toEqual({ a: '1' });
      expect(loaded?.meta.rev).toBe(1);
      expect(loaded?.meta.createdAt).toBe(s.meta.createdAt);
      expect(await store.load(newSessionId(), now())).toBeNull();
    });

    it('keeps values of every JSON type, unicode keys and large values byte for byte', async () => {
      const store = await open();
      const s = sessionFixture();
      await store.create(s);
      const big = JSON.stringify('x'.repeat(512 * 1024));
      const set: Record<string, string> = {
        str: JSON.stringify('héllo ✓ "quoted" \\ \n'),
        int: '42',
        float: '3.25',
        neg: '-7',
        bool: 'true',
        nul: 'null',
        arr: JSON.stringify([1, 'two', { three: [3] }]),
        obj: JSON.stringify({ nested: { deep: true } }),
        'ключ-🔑': JSON.stringify('unicode key'),
        'with space:and.dots': '1',
        big,
      };
      const r = await store.commit(s.id, { set }, { now: now(), idleDeadline: later() });
      expect(r.status).toBe('ok');
      const loaded = await store.load(s.id, now());
      expect(loaded?.attributes).toEqual(set);
    });

    it('applies del, set and incr in one commit and bumps rev', async () => {
      const store = await open();
      const s = sessionFixture({}, { gone: '1', kept: '"k"', n: '5' });
      await store.create(s);
      const r = await store.commit(
        s.id,
        { del: ['gone'], set: { fresh: '"f"' }, incr: { n: 2, m: 3 } },
        { now: now(), idleDeadline: later() },
      );
      expect(r).toEqual({ status: 'ok', rev: 2, values: { n: '7', m: '3' } });
      const loaded = await store.load(s.id, now());
      expect(loaded?.attributes).toEqual({ kept: '"k"', n: '7', m: '3', fresh: '"f"' });
      expect(loaded?.meta.rev).toBe(2);
    });

    it('refuses to incr a value that is not a number and writes nothing', async () => {
      const store = await open();
      const s = sessionFixture({}, { word: '"abc"' });
      await store.create(s);
      const r = await store.commit(
        s.id,
        { set: { other: '1' }, incr: { word: 1 } },
        { now: now(), idleDeadline: later() },
      );
      expect(r).toEqual({ status: 'not-a-number', key: 'word' });
      const loaded = await store.load(s.id, now());
      expect(loaded?.attributes).toEqual({ word: '"abc"' });
      expect(loaded?.meta.rev).toBe(1);
    });

    it('keeps all 100 of 100 parallel commits on distinct keys (two clients)', async () => {
      const [a, b] = [await open(), await open()];
      const s = sessionFixture();
      await a.create(s);
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          (i % 2 ? a : b).commit(s.id, { set: { [`k${i}`]: String(i) } }, { now: now(), idleDeadline: later() }),
        ),
      );
      expect(results.every((r) => r.status === 'ok')).toBe(true);
      const loaded = await a.load(s.id, now());
      expect(Object.keys(loaded?.attributes ?? {})).toHaveLength(100);
      expect(loaded?.meta.rev).toBe(101);
    });

    it('counts exactly 100 after 100 parallel increments (two clients)', async () => {
      const [a, b] = [await open(), await open()];
      const s = sessionFixture();
      await a.create(s);
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          (i % 2 ? a : b).commit(s.id, { incr: { n: 1 } }, { now: now(), idleDeadline: later() }),
        ),
      );
      const seen = results.map((r) => (r.status === 'ok' ? Number(r.values.n) : -1)).sort((x, y) => x - y);
      expect(seen).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      expect((await a.load(s.id, now()))?.attributes.n).toBe('100');
    });

    it('compare-and-swap: a stale expectedRev conflicts; a CAS retry loop reaches the exact total', async () => {
      const [a, b] = [await open(), await open()];
      const s = sessionFixture({}, { list: '[]' });
      await a.create(s);
      const stale = await a.commit(s.id, { set: { x: '1' } }, { now: now(), idleDeadline: later(), expectedRev: 0 });
      expect(stale).toEqual({ status: 'conflict', rev: 1 });
      const append = async (store: SessionStore, item: number) => {
        for (let attempt = 0; attempt < 200; attempt++) {
          const cur = await store.load(s.id, now());
          if (!cur) throw new Error('session vanished');
          const list = JSON.parse(cur.attributes.list ?? '[]') as number[];
          const r = await store.commit(
            s.id,
            { set: { list: JSON.stringify([...list, item]) } },
            { now: now(), idleDeadline: later(), expectedRev: cur.meta.rev },
          );
          if (r.status === 'ok') return;
          expect(r.status).toBe('conflict');
        }
        throw new Error('CAS never won');
      };
      await Promise.all(Array.from({ length: 20 }, (_, i) => append(i % 2 ? a : b, i)));
      const list = JSON.parse((await a.load(s.id, now()))?.attributes.list ?? '[]') as number[];
      expect(list.sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    });

    it('destroy wins: nothing after it, or racing it, resurrects the session', async () => {
      const store = await open();
      const s = sessionFixture({}, { a: '1' });
      await store.create(s);
      const racing = Array.from({ length: 30 }, (_, i) =>
        store.commit(s.id, { set: { [`r${i}`]: '1' } }, { now: now(), idleDeadline: later() }),
      );
      const destroyed = store.destroy(s.id, now());
      await Promise.all(racing);
      expect(await destroyed).toBe(true);
      expect(await store.load(s.id, now())).toBeNull();
      expect(await store.commit(s.id, { set: { b: '1' } }, { now: now(), idleDeadline: later() })).toEqual({
        status: 'gone',
      });
      expect(await store.touch(s.id, now(), later())).toBe(false);
      expect(await store.destroy(s.id, now())).toBe(false);
      expect(await store.load(s.id, now())).toBeNull();
    });

    it('expires on the idle and on the absolute deadline; touch slides idle without a rev bump', async () => {
      const store = await open();
      const t = now();
      const idle = sessionFixture({ idleDeadline: t + 1000 });
      const absolute = sessionFixture({ absoluteDeadline: t + 1000 });
      await store.create(idle);
      await store.create(absolute);
      expect(await store.load(idle.id, t + 1001)).toBeNull();
      expect(await store.load(absolute.id, t + 1001)).toBeNull();
      expect((await store.commit(idle.id, { set: { a: '1' } }, { now: t + 1001, idleDeadline: t + HOUR })).status).toBe(
        'gone',
      );
      expect(await store.touch(idle.id, t + 500, t + 5000)).toBe(true);
      const touched = await store.load(idle.id, t + 2000);
      expect(touched?.meta.rev).toBe(1);
      expect(touched?.meta.idleDeadline).toBe(t + 5000);
      expect(touched?.meta.lastSeenAt).toBe(t + 500);
      expect(await store.touch(absolute.id, t + 1001, t + 5000)).toBe(false);
    });

    it('stores attributes named __proto__ and constructor as ordinary fields (create, set, incr, del)', async () => {
      const store = await open();
      const s = sessionFixture();
      // JSON.parse defines own properties, so "__proto__" is a plain key here, as it is for a user's data.
      s.attributes = JSON.parse('{"__proto__":"\\"p\\"","constructor":"1"}') as Record<string, string>;
      await store.create(s);
      const created = await store.load(s.id, now());
      expect(Object.entries(created?.attributes ?? {}).sort()).toEqual([
        ['__proto__', '"p"'],
        ['constructor', '1'],
      ]);
      const set = JSON.parse('{"__proto__":"{\\"polluted\\":true}"}') as Record<string, string>;
      const r = await store.commit(s.id, { set, incr: { constructor: 2 } }, { now: now(), idleDeadline: later() });
      expect(r).toMatchObject({ status: 'ok', values: { constructor: '3' } });
      const loaded = await store.load(s.id, now());
      expect(Object.getPrototypeOf(loaded?.attributes)).toBe(Object.prototype);
      expect(Object.entries(loaded?.attributes ?? {}).sort()).toEqual([
        ['__proto__', '{"polluted":true}'],
        ['constructor', '3'],
      ]);
      await store.commit(s.id, { del: ['__proto__', 'constructor'] }, { now: now(), idleDeadline: later() });
      expect((await store.load(s.id, now()))?.attributes).toEqual({});
    });

    it('rejects every call with StoreUnavailableError after close (close is idempotent)', async () => {
      const store = await (fixture.connectOwn ?? fixture.connect)();
      const s = sessionFixture();
      await store.create(s);
      await store.close();
      const t = now();
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['create', () => store.create(sessionFixture())],
        ['load', () => store.load(s.id, t)],
        ['commit', () => store.commit(s.id, { set: { a: '1' } }, { now: t, idleDeadline: later() })],
        ['touch', () => store.touch(s.id, t, later())],
        ['destroy', () => store.destroy(s.id, t)],
        ['listByUser', () => store.listByUser('u', t)],
        ['claimEnded', () => store.claimEnded({ now: t, limit: 1, leaseMs: 1000, owner: 'x' })],
        ['ackEnded', () => store.ackEnded(s.id)],
        ['acquireLock', () => store.acquireLock(s.id, 'l', 'o', 1000)],
        ['releaseLock', () => store.releaseLock(s.id, 'l', 'o')],
        ['ping', () => store.ping()],
      ];
      if (store.loadIfChanged)
        calls.push(['loadIfChanged', () => store.loadIfChanged?.(s.id, t, 0) as Promise<unknown>]);
      for (const [op, call] of calls) {
        await expect(call(), op).rejects.toBeInstanceOf(StoreUnavailableError);
      }
      await store.close();
    });

    it('sets and clears userId through commit', async () => {
      const store = await open();
      const s = sessionFixture();
      await store.create(s);
      await store.commit(s.id, { userId: 'alice' }, { now: now(), idleDeadline: later() });
      expect((await store.load(s.id, now()))?.meta.userId).toBe('alice');
      await store.commit(s.id, { userId: null }, { now: now(), idleDeadline: later() });
      expect((await store.load(s.id, now()))?.meta.userId).toBeNull();
    });

    describeLoadIfChanged(open);
    describeLifetime(open);
    describeUserIndex(open);
    describeLifecycle(open);
    describeLocks(open);

    it.skipIf(!fixture.connectDown)(
      'fails with StoreUnavailableError, within the timeout, when the backend is down',
      async () => {
        const store = await fixture.connectDown?.();
        if (!store) return;
        opened.push(store);
        const started = Date.now();
        await expect(store.load(newSessionId(), now())).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(Date.now() - started).toBeLessThan(10_000);
      },
    );
  });
}

type Open = () => Promise<SessionStore>;

function describeLoadIfChanged(open: Open): void {
  const NO_CAPABILITY =
    'the store has no loadIfChanged (it keeps a session as one value); the near cache falls back to load';

  it('loadIfChanged: the same rev answers "unchanged" with fresh meta; another client\'s commit answers the full record', async (ctx) => {
    const [a, b] = [await open(), await open()];
    if (!a.loadIfChanged) return ctx.skip(NO_CAPABILITY);
    const t = Date.now();
    const s = sessionFixture({ userId: 'u1', client: 'Firefox / 127.0.0.1' }, { keep: '"k"', n: '1' });
    await a.create(s);
    const same = await a.loadIfChanged(s.id, t, 1);
    expect(same).toEqual({ status: 'unchanged', meta: s.meta });
    // A touch moves the deadlines but not rev: still unchanged, with the new deadline.
    expect(await b.touch(s.id, t + 10, t + HOUR + 10)).toBe(true);
    const touched = await a.loadIfChanged(s.id, t + 20, 1);
    expect(touched).toEqual({
      status: 'unchanged',
      meta: { ...s.meta, lastSeenAt: t + 10, idleDeadline: t + HOUR + 10 },
    });
    const r = await b.commit(
      s.id,
      { set: { n: '2', fresh: '"f"' }, userId: 'u2' },
      { now: t + 30, idleDeadline: t + HOUR + 30 },
    );
    expect(r.status).toBe('ok');
    const changed = await a.loadIfChanged(s.id, t + 40, 1);
    expect(changed).toEqual({
      status: 'changed',
      session: {
        id: s.id,
        meta: { ...s.meta, userId: 'u2', rev: 2, lastSeenAt: t + 30, idleDeadline: t + HOUR + 30 },
        attributes: { keep: '"k"', n: '2', fresh: '"f"' },
      },
    });
    // Whatever rev the caller holds, a different one gets the full record, and the current one does not.
    expect((await a.loadIfChanged(s.id, t + 40, 7))?.status).toBe('changed');
    expect((await a.loadIfChanged(s.id, t + 40, 2))?.status).toBe('unchanged');
    expect(await a.loadIfChanged(newSessionId(), t, 1)).toBeNull();
  });

  it('loadIfChanged: null for a destroyed session and past either deadline, whatever rev is given', async (ctx) => {
    const store = await open();
    if (!store.loadIfChanged) return ctx.skip(NO_CAPABILITY);
    const t = Date.now();
    const destroyed = sessionFixture({}, { a: '1' });
    const idle = sessionFixture({ idleDeadline: t + 1000 }, { a: '1' });
    const absolute = sessionFixture({ absoluteDeadline: t + 1000 }, { a: '1' });
    for (const s of [destroyed, idle, absolute]) await store.create(s);
    expect((await store.loadIfChanged(destroyed.id, t, 1))?.status).toBe('unchanged');
    expect(await store.destroy(destroyed.id, t)).toBe(true);
    for (const rev of [1, 2]) {
      expect(await store.loadIfChanged(destroyed.id, t, rev)).toBeNull();
      expect(await store.loadIfChanged(idle.id, t + 1001, rev)).toBeNull();
      expect(await store.loadIfChanged(absolute.id, t + 1001, rev)).toBeNull();
    }
    // Just before the deadline both are still served.
    expect((await store.loadIfChanged(idle.id, t + 999, 1))?.status).toBe('unchanged');
    expect((await store.loadIfChanged(absolute.id, t + 999, 0))?.status).toBe('changed');
  });
}

function describeLifetime(open: Open): void {
  it("a session's own idle length (meta.idleMs) is kept, and commits and touches from any client slide by it, not by the caller's deadline", async () => {
    const [a, b] = [await open(), await open()];
    const t = Date.now();
    const s = sessionFixture({ idleMs: 10_000, idleDeadline: t + 10_000, absoluteDeadline: t + HOUR });
    const plain = sessionFixture({ idleDeadline: t + 10_000 });
    await a.create(s);
    await a.create(plain);
    expect((await b.load(s.id, t))?.meta.idleMs).toBe(10_000);
    expect((await b.load(plain.id, t))?.meta.idleMs).toBeUndefined();
    // A client that never loaded the session passes the deadline its own default gives.
    expect((await b.commit(s.id, { set: { a: '1' } }, { now: t + 100, idleDeadline: t + 600 })).status).toBe('ok');
    expect((await a.load(s.id, t + 200))?.meta).toMatchObject({ idleMs: 10_000, idleDeadline: t + 10_100, rev: 2 });
    expect(await b.touch(s.id, t + 300, t + 800)).toBe(true);
    expect((await a.load(s.id, t + 300))?.meta).toMatchObject({ idleDeadline: t + 10_300, lastSeenAt: t + 300 });
    // Past the caller's deadline, still served: its own idle length is what counts.
    expect(await a.load(s.id, t + 5000)).not.toBeNull();
    // A record without one takes the caller's deadline, as before.
    expect(await b.touch(plain.id, t + 300, t + 800)).toBe(true);
    expect((await a.load(plain.id, t + 300))?.meta.idleDeadline).toBe(t + 800);
    if (a.loadIfChanged) {
      expect(await a.loadIfChanged(s.id, t + 400, 2)).toMatchObject({ status: 'unchanged', meta: { idleMs: 10_000 } });
      expect(await a.loadIfChanged(s.id, t + 400, 1)).toMatchObject({
        status: 'changed',
        session: { meta: { idleMs: 10_000 } },
      });
    }
  });

  it('a commit with a lifetime sets the idle length and moves the absolute deadline from createdAt; idleMs null removes it', async () => {
    const [a, b] = [await open(), await open()];
    const t = Date.now();
    const s = sessionFixture({ createdAt: t, idleDeadline: t + 1000, absoluteDeadline: t + 2000 }, { a: '1' });
    await a.create(s);
    const set = await b.commit(
      s.id,
      { set: { b: '2' }, lifetime: { idleMs: 60_000, absoluteMs: 5 * HOUR } },
      { now: t + 10, idleDeadline: t + 1010 },
    );
    expect(set).toMatchObject({ status: 'ok', rev: 2 });
    const long = await a.load(s.id, t + 20);
    expect(long?.meta).toMatchObject({ idleMs: 60_000, idleDeadline: t + 60_010, absoluteDeadline: t + 5 * HOUR });
    expect(long?.attributes).toEqual({ a: '1', b: '2' });
    // Both old deadlines have passed; the new ones keep it.
    expect(await a.load(s.id, t + 30_000)).not.toBeNull();
    expect(await b.touch(s.id, t + 30_000, t + 30_500)).toBe(true);
    expect((await a.load(s.id, t + 30_000))?.meta.idleDeadline).toBe(t + 90_000);
    const back = await b.commit(
      s.id,
      { lifetime: { idleMs: null, absoluteMs: HOUR } },
      { now: t + 40_000, idleDeadline: t + 41_000 },
    );
    expect(back).toMatchObject({ status: 'ok', rev: 3 });
    const plain = await a.load(s.id, t + 40_000);
    expect(plain?.meta.idleMs).toBeUndefined();
    expect(plain?.meta).toMatchObject({ idleDeadline: t + 41_000, absoluteDeadline: t + HOUR });
    expect(await a.load(s.id, t + 41_000)).toBeNull();
    // A refused commit moves nothing.
    const gone = await b.commit(
      s.id,
      { lifetime: { idleMs: HOUR, absoluteMs: 2 * HOUR } },
      { now: t + 42_000, idleDeadline: t + 43_000 },
    );
    expect(gone).toEqual({ status: 'gone' });
  });

  it('a lifetime change under compare-and-swap conflicts like any other change, writing nothing', async () => {
    const store = await open();
    const t = Date.now();
    const s = sessionFixture({ createdAt: t });
    await store.create(s);
    const stale = await store.commit(
      s.id,
      { lifetime: { idleMs: 60_000, absoluteMs: 5 * HOUR } },
      { now: t, idleDeadline: t + 1000, expectedRev: 7 },
    );
    expect(stale).toEqual({ status: 'conflict', rev: 1 });
    expect((await store.load(s.id, t))?.meta).toEqual(s.meta);
  });

  it('ends a session with its own lifetime at its idle deadline (idle-timeout) or its absolute one (absolute-timeout)', async (ctx) => {
    const [a, b] = [await open(), await open()];
    if (!a.capabilities.lifecycle) return ctx.skip();
    const t = Date.now();
    const idle = sessionFixture({ createdAt: t, idleDeadline: t + HOUR });
    const absolute = sessionFixture({ createdAt: t, idleDeadline: t + HOUR });
    for (const s of [idle, absolute]) await a.create(s);
    await b.commit(idle.id, { lifetime: { idleMs: 50, absoluteMs: HOUR } }, { now: t, idleDeadline: t + HOUR });
    await b.commit(absolute.id, { lifetime: { idleMs: HOUR, absoluteMs: 50 } }, { now: t, idleDeadline: t + HOUR });
    const mine = new Set([idle.id, absolute.id]);
    const reasons = new Map<string, string>();
    for (let round = 0; round < 10 && reasons.size < 2; round++) {
      for (const e of await a.claimEnded({ now: t + 100, limit: 1000, leaseMs: 60_000, owner: 'x' })) {
        if (mine.has(e.snapshot.id)) reasons.set(e.snapshot.id, e.reason);
      }
    }
    expect(reasons.get(idle.id)).toBe('idle-timeout');
    expect(reasons.get(absolute.id)).toBe('absolute-timeout');
    for (const id of mine) await a.ackEnded(id);
  });
}

function describeUserIndex(open: Open): void {
  it('lists a user’s live sessions only', async (ctx) => {
    const store = await open();
    if (!store.capabilities.userIndex) return ctx.skip();
    const user = `u-${randomUUID()}`;
    const t = Date.now();
    const a = sessionFixture({ userId: user, client: 'Firefox / 127.0.0.1' });
    const b = sessionFixture({ userId: user });
    const c = sessionFixture({ userId: user });
    const other = sessionFixture({ userId: 'someone-else' });
    const late = sessionFixture();
    for (const s of [a, b, c, other, late]) await store.create(s);
    await store.commit(late.id, { userId: user }, { now: t, idleDeadline: t + HOUR });
    await store.destroy(c.id, t);
    const listed = await store.listByUser(user, Date.now());
    expect(listed.map((s) => s.id).sort()).toEqual([a.id, b.id, late.id].sort());
    expect(listed.find((s) => s.id === a.id)?.meta.client).toBe('Firefox / 127.0.0.1');
  });
}

function describeLifecycle(open: Open): void {
  it('claims each ended session exactly once across clients, with reason and last snapshot', async (ctx) => {
    const [a, b, c] = [await open(), await open(), await open()];
    if (!a.capabilities.lifecycle) return ctx.skip();
    const t = Date.now();
    const marker = randomUUID();
    const idle = Array.from({ length: 20 }, () =>
      sessionFixture({ idleDeadline: t + 50 }, { marker: JSON.stringify(marker) }),
    );
    const absolute = sessionFixture({ absoluteDeadline: t + 50 }, { marker: JSON.stringify(marker) });
    const destroyed = sessionFixture({}, { marker: JSON.stringify(marker) });
    for (const s of [...idle, absolute, destroyed]) await a.create(s);
    await a.commit(destroyed.id, { set: { last: '"words"' } }, { now: t, idleDeadline: t + HOUR });
    await a.destroy(destroyed.id, t);
    const mine = new Set([...idle, absolute, destroyed].map((s) => s.id));
    const seen = new Map<string, string>();
    const claimAt = t + 100;
    for (let round = 0; round < 20 && seen.size < mine.size; round++) {
      const batches = await Promise.all(
        [a, b, c].map((s, i) => s.claimEnded({ now: claimAt, limit: 10, leaseMs: 60_000, owner: `n${i}` })),
      );
      for (const ended of batches.flat()) {
        if (!mine.has(ended.snapshot.id)) continue;
        expect(seen.has(ended.snapshot.id), `claimed twice: ${ended.snapshot.id}`).toBe(false);
        seen.set(ended.snapshot.id, ended.reason);
        expect(ended.attempt).toBe(1);
        expect(JSON.parse(ended.snapshot.attributes.marker ?? 'null')).toBe(marker);
        if (ended.snapshot.id === destroyed.id) expect(ended.snapshot.attributes.last).toBe('"words"');
      }
    }
    expect(seen.size).toBe(mine.size);
    expect(seen.get(absolute.id)).toBe('absolute-timeout');
    expect(seen.get(destroyed.id)).toBe('destroyed');
    expect(seen.get(idle[0]?.id ?? '')).toBe('idle-timeout');
    // Claimed and not yet acked: refused everywhere, not handed out again within the lease.
    expect(await b.load(idle[0]?.id ?? '', t)).toBeNull();
    const again = await b.claimEnded({ now: claimAt + 1000, limit: 100, leaseMs: 60_000, owner: 'n1' });
    expect(again.filter((e) => mine.has(e.snapshot.id))).toEqual([]);
    for (const id of mine) await a.ackEnded(id);
  });

  it('hands a claim whose lease lapsed to another claimer with attempt 2; ack ends it for good', async (ctx) => {
    const [a, b] = [await open(), await open()];
    if (!a.capabilities.lifecycle) return ctx.skip();
    const t = Date.now();
    const s = sessionFixture({ idleDeadline: t + 10 });
    await a.create(s);
    const first = (await a.claimEnded({ now: t + 20, limit: 1000, leaseMs: 500, owner: 'dies' })).find(
      (e) => e.snapshot.id === s.id,
    );
    expect(first?.attempt).toBe(1);
    const tooEarly = await b.claimEnded({ now: t + 300, limit: 1000, leaseMs: 500, owner: 'b' });
    expect(tooEarly.some((e) => e.snapshot.id === s.id)).toBe(false);
    const retry = (await b.claimEnded({ now: t + 600, limit: 1000, leaseMs: 500, owner: 'b' })).find(
      (e) => e.snapshot.id === s.id,
    );
    expect(retry?.attempt).toBe(2);
    expect(retry?.reason).toBe('idle-timeout');
    await b.ackEnded(s.id);
    const after = await a.claimEnded({ now: t + 5000, limit: 1000, leaseMs: 500, owner: 'a' });
    expect(after.some((e) => e.snapshot.id === s.id)).toBe(false);
    expect(await a.load(s.id, t)).toBeNull();
  });

  it('a silent destroy (rotation) refuses the id at once and leaves no end to claim, not even at its deadline', async () => {
    const [a, b] = [await open(), await open()];
    const t = Date.now();
    const rotated = sessionFixture({ userId: 'rotated-user' }, { a: '1' });
    const due = sessionFixture({ idleDeadline: t + 50 }, { a: '1' }); // rotated just before it would expire
    for (const s of [rotated, due]) {
      await a.create(s);
      expect(await a.destroy(s.id, t, { silent: true })).toBe(true);
    }
    for (const store of [a, b]) expect(await store.load(rotated.id, t)).toBeNull();
    expect(await b.commit(rotated.id, { set: { b: '1' } }, { now: t, idleDeadline: t + HOUR })).toEqual({
      status: 'gone',
    });
    expect(await b.touch(rotated.id, t, t + HOUR)).toBe(false);
    // A logout racing the rotation finds nothing left to end.
    expect(await b.destroy(rotated.id, t)).toBe(false);
    expect(await b.destroy(rotated.id, t, { silent: true })).toBe(false);
    if (!a.capabilities.lifecycle) return;
    const mine = new Set([rotated.id, due.id]);
    const claimed = await Promise.all(
      [a, b].map((s, i) => s.claimEnded({ now: t + 100, limit: 1000, leaseMs: 60_000, owner: `r${i}` })),
    );
    expect(claimed.flat().filter((e) => mine.has(e.snapshot.id))).toEqual([]);
  });

  it('does not claim live sessions, and a touched session moves its end', async (ctx) => {
    const store = await open();
    if (!store.capabilities.lifecycle) return ctx.skip();
    const t = Date.now();
    const s = sessionFixture({ idleDeadline: t + 100 });
    await store.create(s);
    await store.touch(s.id, t + 50, t + 10_000);
    const claimed = await store.claimEnded({ now: t + 200, limit: 1000, leaseMs: 500, owner: 'x' });
    expect(claimed.some((e) => e.snapshot.id === s.id)).toBe(false);
    expect(await store.load(s.id, t + 200)).not.toBeNull();
    await store.destroy(s.id, t + 300);
    const ended = await store.claimEnded({ now: t + 300, limit: 1000, leaseMs: 500, owner: 'x' });
    expect(ended.find((e) => e.snapshot.id === s.id)?.reason).toBe('destroyed');
    await store.ackEnded(s.id);
  });
}

function describeLocks(open: Open): void {
  it('grants a lock to one owner at a time with increasing fencing tokens; a lapsed lease frees it', async (ctx) => {
    const [a, b] = [await open(), await open()];
    if (!a.capabilities.locks) return ctx.skip();
    const s = sessionFixture();
    await a.create(s);
    const first = await a.acquireLock(s.id, 'checkout', 'owner-a', 300);
    expect(first).not.toBeNull();
    expect(await b.acquireLock(s.id, 'checkout', 'owner-b', 300)).toBeNull();
    expect(await b.acquireLock(s.id, 'other', 'owner-b', 300)).not.toBeNull();
    await b.releaseLock(s.id, 'checkout', 'owner-b'); // not the holder: no effect
    expect(await b.acquireLock(s.id, 'checkout', 'owner-b', 300)).toBeNull();
    await a.releaseLock(s.id, 'checkout', 'owner-a');
    const second = await b.acquireLock(s.id, 'checkout', 'owner-b', 300);
    expect(second?.fencingToken).toBeGreaterThan(first?.fencingToken ?? Number.POSITIVE_INFINITY);
    await new Promise((r) => setTimeout(r, 400));
    const third = await a.acquireLock(s.id, 'checkout', 'owner-a', 300);
    expect(third?.fencingToken).toBeGreaterThan(second?.fencingToken ?? Number.POSITIVE_INFINITY);
    await a.releaseLock(s.id, 'checkout', 'owner-a');
  });
}
