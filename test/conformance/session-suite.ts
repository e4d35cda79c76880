import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ConfigError, ConflictError, SessionValueError } from '../../src/core/errors.js';
import { newSessionId } from '../../src/core/ids.js';
import { defineSession, SessionManager } from '../../src/session/manager.js';
import type { SessionOptions, SessionSchema } from '../../src/session/options.js';
import type { SessionStore, StoredSession } from '../../src/stores/contract.js';
import { describeNearCache } from './session-near-cache-suite.js';
import { type ConnectStore, type Loose, request, seed, twoNodes } from './session-rig.js';
import { describeSessionSecurity } from './session-security-suite.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const newSecret = () => randomBytes(32).toString('base64url');

/** Wraps a real store and records which methods were called. It counts; it never answers in the store's place. */
export function countingStore(store: SessionStore): { store: SessionStore; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return Reflect.apply(value, target, args);
      };
    },
  });
  return { store: proxy, calls };
}

/**
 * Session-level behaviour (the SessionManager and Session over a real store),
 * run against every store. `connectStore` returns a new client of the same
 * backend and namespace (or of the namespace it is given: the client scope's
 * tests use one); two clients stand in for two web nodes.
 */
export function describeSessionConformance(name: string, connectStore: ConnectStore, skipReason?: string): void {
  describe.skipIf(skipReason !== undefined)(`session conformance: ${name}`, () => {
    const nodes = twoNodes(connectStore);
    const secret = newSecret();

    /** A manager on node A (counted) plus one on node B, sharing secrets and options. */
    const rig = <T extends SessionSchema = Loose>(options: Partial<SessionOptions<T>> = {}) => {
      const counted = countingStore(nodes.a);
      // No background sweeper: its claims are not request work and would blur the call counts.
      const base = { secrets: [secret], cookie: { secure: false }, sweep: { enabled: false }, ...options };
      const a = new SessionManager<T>({ ...base, store: counted.store });
      const b = new SessionManager<T>({ ...base, store: nodes.b });
      nodes.track(a, b);
      return { a, b, calls: counted.calls, reset: () => counted.calls.splice(0) };
    };
    const stored = async (id: string | null): Promise<StoredSession | null> =>
      id === null ? null : nodes.a.load(id, Date.now());

    describe('lazy loading and change tracking', () => {
      it('makes zero store calls for a request that never touches the session', async () => {
        const { a, calls, reset } = rig();
        const { cookie } = await seed(a, { a: 1 });
        reset();
        const withCookie = await request(a, cookie, () => 'handled');
        const without = await request(a, undefined, () => 'handled');
        expect(calls).toEqual([]);
        expect(withCookie.setCookie).toBeUndefined();
        expect(without.setCookie).toBeUndefined();
      });

      it('sets and deletes blind (no load), and the next request on another node reads the writes', async () => {
        const { a, b, calls, reset } = rig();
        const { cookie, id } = await seed(a, { a: 1, b: 'x' });
        reset();
        const blind = await request(a, cookie, (s) => {
          s.set('c', [1, 2]);
          s.delete('a');
        });
        expect(calls).toEqual(['commit']);
        expect(blind.setCookie).toBeUndefined();
        expect(blind.session.id).toBe(id);
        const next = await request(b, cookie, (s) => s.all());
        expect(next.result).toEqual({ b: 'x', c: [1, 2] });
      });

      it('keeps both writes of two interleaved requests that set different keys', async () => {
        const { a, b } = rig();
        const { cookie } = await seed(a, { seed: 0 });
        const first = a.open(cookie);
        const second = b.open(cookie);
        expect(await first.get('seed')).toBe(0);
        expect(await second.get('seed')).toBe(0);
        first.set('fromA', 'one');
        second.set('fromB', 'two');
        await first.commit();
        await second.commit();
        // And twenty at once, each on its own key.
        await Promise.all(range(20).map((i) => request(i % 2 ? a : b, cookie, (s) => s.set(`k${i}`, i))));
        const all = (await request(a, cookie, (s) => s.all())).result;
        expect(all).toMatchObject({ seed: 0, fromA: 'one', fromB: 'two' });
        for (const i of range(20)) expect(all[`k${i}`]).toBe(i);
      });

      it('detects and saves in-place mutation of objects and arrays returned by get()', async () => {
        type Shape = { cart: { items: string[] }; tags: string[]; profile: { address: { city: string } } };
        const { a, b } = rig<Shape>();
        const first = await request(a, undefined, (s) => {
          s.set('cart', { items: ['apple'] });
          s.set('tags', ['x']);
          s.set('profile', { address: { city: 'Paris' } });
        });
        await request(a, first.cookie, async (s) => {
          (await s.get('cart'))?.items.push('pear');
          (await s.get('tags'))?.push('y');
          const profile = await s.get('profile');
          if (profile) profile.address.city = 'Lyon';
        });
        const next = await request(b, first.cookie, (s) => s.all());
        expect(next.result).toEqual({
          cart: { items: ['apple', 'pear'] },
          tags: ['x', 'y'],
          profile: { address: { city: 'Lyon' } },
        });
      });

      it('writes nothing for a request that only reads (rev unchanged)', async () => {
        const { a, calls, reset } = rig();
        const { cookie, id } = await seed(a, { obj: { deep: [1, { x: 2 }] }, list: [3], n: 4, s: 'str' });
        const before = await stored(id);
        reset();
        const r = await request(a, cookie, (s) => s.all());
        expect(r.result).toEqual({ obj: { deep: [1, { x: 2 }] }, list: [3], n: 4, s: 'str' });
        expect(calls).toEqual(['load']);
        expect(r.setCookie).toBeUndefined();
        const after = await stored(id);
        expect(after?.meta.rev).toBe(before?.meta.rev);
        expect(after?.attributes).toEqual(before?.attributes);
      });
    });

    describe("a request's own changes, in order", () => {
      it('increment() and update() see a delete or set made earlier in the same request', async () => {
        const { a, b } = rig<{ n: number; list: number[] }>();
        const { cookie } = await seed(a, { n: 41, list: [1] });
        const r = await request(a, cookie, async (s) => {
          s.delete('n');
          const n = await s.increment('n');
          s.set('list', [7]);
          const list = await s.update('list', (cur) => [...(cur ?? []), 8]);
          return { n, list };
        });
        expect(r.result).toEqual({ n: 1, list: [7, 8] });
        expect((await request(b, cookie, (s) => s.all())).result).toEqual({ n: 1, list: [7, 8] });
        const again = await request(a, cookie, async (s) => {
          s.delete('list');
          return s.update('list', (cur) => [...(cur ?? []), 9]);
        });
        expect(again.result).toEqual([9]);
        expect((await request(b, cookie, (s) => s.get('list'))).result).toEqual([9]);
      });

      it('never creates a session for a request that only deletes or clears the user', async () => {
        const { a, calls, reset } = rig();
        const { cookie, id } = await seed(a, { a: 1 });
        await request(a, cookie, (s) => s.destroy());
        reset();
        const anonymous = await request(a, undefined, (s) => {
          s.delete('flash');
          s.setUser(null);
        });
        expect(anonymous.session.id).toBeNull();
        expect(anonymous.setCookie).toBeUndefined();
        const stale = await request(a, cookie, (s) => s.delete('flash'));
        expect(stale.session.id).toBeNull();
        expect(stale.setCookie).toMatch(/Max-Age=0/);
        expect(calls).toEqual(['commit']);
        expect(await stored(id)).toBeNull();
      });
    });

    describe('atomic counters and compare-and-swap', () => {
      it('returns running totals from increment()', async () => {
        const { a, b } = rig();
        const first = await request(a, undefined, async (s) => [
          await s.increment('n'),
          await s.increment('n'),
          await s.increment('n', 3),
        ]);
        expect(first.result).toEqual([1, 2, 5]);
        const second = await request(b, first.cookie, async (s) => {
          const total = await s.increment('n', -2);
          return [total, await s.get('n')];
        });
        expect(second.result).toEqual([3, 3]);
        const pending = await request(a, first.cookie, async (s) => {
          s.set('m', 10);
          return s.increment('m');
        });
        expect(pending.result).toBe(11);
        expect((await request(b, first.cookie, (s) => s.all())).result).toEqual({ n: 3, m: 11 });
      });

      it('counts all 100 of 100 concurrent increments from separate requests on two nodes', async () => {
        const { a, b } = rig();
        const { cookie } = await seed(a, { hits: 0 });
        const totals = await Promise.all(
          range(100).map(async (i) => (await request(i % 2 ? a : b, cookie, (s) => s.increment('hits'))).result),
        );
        expect([...totals].sort((x, y) => x - y)).toEqual(range(100).map((i) => i + 1));
        expect((await request(a, cookie, (s) => s.get('hits'))).result).toBe(100);
      });

      it('keeps all 30 appends of 30 concurrent update() calls (compare-and-swap retries)', async () => {
        const { a, b } = rig<{ list: number[] }>();
        const { cookie } = await seed(a, { list: [] });
        const results = await Promise.all(
          range(30).map(
            async (i) =>
              (await request(i % 2 ? a : b, cookie, (s) => s.update('list', (cur) => [...(cur ?? []), i]))).result,
          ),
        );
        for (const i of range(30)) expect(results[i]).toContain(i);
        const list = (await request(a, cookie, (s) => s.get('list'))).result;
        expect([...(list ?? [])].sort((x, y) => x - y)).toEqual(range(30));
      });

      it('throws a ConflictError that says what to do when update() runs out of retries', async () => {
        const { a, b } = rig<{ list: number[] }>({ updateRetries: 1 });
        const { cookie } = await seed(a, { list: [] });
        // 30 updaters at once with a single attempt each: all read the same rev, only some can win.
        const settled = await Promise.allSettled(
          range(30).map((i) =>
            request(i % 2 ? a : b, cookie, (s) => s.update('list', (cur) => [...(cur ?? []), i])).then(() => i),
          ),
        );
        const won = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        const lost = settled.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
        expect(lost.length).toBeGreaterThan(0);
        for (const err of lost) {
          expect(err).toBeInstanceOf(ConflictError);
          expect((err as Error).message).toMatch(/session\.update\("list"\).*1 times.*updateRetries/);
        }
        // Exactly the winners' appends: nothing lost, nothing half-applied.
        const list = (await request(a, cookie, (s) => s.get('list'))).result;
        expect([...(list ?? [])].sort((x, y) => x - y)).toEqual(won.sort((x, y) => x - y));
      });
    });

    describe('values that cannot be stored', () => {
      it('refuses increment() of a non-number with a SessionValueError naming the key, writing nothing', async () => {
        const { a } = rig();
        const { cookie, id } = await seed(a, { word: 'abc', n: 1 });
        const before = await stored(id);
        const s = a.open(cookie);
        const err = await s.increment('word').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(SessionValueError);
        // Which of the two causes the store refused it for: here the value, not the sum.
        expect((err as Error).message).toBe(
          'session.increment("word") needs a number, but "word" holds a string; nothing was written',
        );
        await s.commit();
        const after = await stored(id);
        expect(after?.attributes).toEqual(before?.attributes);
        expect(after?.meta.rev).toBe(before?.meta.rev);
      });

      it('refuses increment() by NaN, Infinity or a non-number at the call, leaving the stored value as it was', async () => {
        const { a, calls, reset } = rig();
        const { cookie, id } = await seed(a, { n: 5 });
        const before = await stored(id);
        const s = a.open(cookie);
        reset();
        for (const by of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '2', null]) {
          const err = await s.increment('n', by as number).catch((e: unknown) => e);
          expect(err, String(by)).toBeInstanceOf(SessionValueError);
          expect((err as Error).message, String(by)).toMatch(
            /^session\.increment\("n", by\) needs a finite number to add, e\.g\. increment\("n", 1\); got .*, so nothing was written$/,
          );
        }
        expect(calls).toEqual([]);
        await s.commit();
        const after = await stored(id);
        expect(after?.attributes).toEqual(before?.attributes);
        expect(after?.meta.rev).toBe(before?.meta.rev);
        expect((await request(a, cookie, (t) => t.get('n'))).result).toBe(5);
        expect((await request(a, cookie, (t) => t.increment('n', 1))).result).toBe(6);
      });

      it('refuses an increment() whose total would not be a finite number, writing nothing', async () => {
        const { a } = rig();
        const { cookie, id } = await seed(a, { n: Number.MAX_VALUE });
        const before = await stored(id);
        const s = a.open(cookie);
        const err = await s.increment('n', Number.MAX_VALUE).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(SessionValueError);
        // The stored value is a number: the message says the sum, not the value, was the trouble.
        expect((err as Error).message).toBe(
          `session.increment("n", ${Number.MAX_VALUE}) would take "n" (${Number.MAX_VALUE}) past the largest number; nothing was written`,
        );
        await s.commit();
        const after = await stored(id);
        expect(after?.attributes).toEqual(before?.attributes);
        expect((await request(a, cookie, (t) => t.get('n'))).result).toBe(Number.MAX_VALUE);
      });

      it('refuses a user id that is not a string or null at setUser(), keeping the stored user', async () => {
        const { a } = rig();
        const { cookie, id } = await seed(a, { n: 1 });
        await request(a, cookie, (s) => s.setUser('alice'));
        const before = await stored(id);
        for (const [bad, got] of [
          [42, 'a number'],
          [{ id: 1 }, 'an object'],
          [undefined, 'nothing'],
        ] as const) {
          const attempt = await request(a, cookie, (s) => {
            try {
              s.setUser(bad as unknown as string);
            } catch (err) {
              return err;
            }
          });
          expect(attempt.result, got).toBeInstanceOf(SessionValueError);
          expect((attempt.result as Error).message).toBe(
            `session.setUser(userId) takes the user's id as a string (String(user.id)) or null; got ${got}`,
          );
        }
        const empty = await request(a, cookie, (s) => {
          try {
            s.setUser('');
          } catch (err) {
            return err;
          }
        });
        expect(empty.result).toBeInstanceOf(SessionValueError);
        expect((empty.result as Error).message).toBe(
          "session.setUser(userId) got an empty string, which is no user: pass the user's id, or null to sign the session out",
        );
        const after = await stored(id);
        expect(after?.meta.userId).toBe('alice');
        expect(after?.meta.rev).toBe(before?.meta.rev);
        expect((await request(a, cookie, (s) => s.userId())).result).toBe('alice');
      });

      it('refuses a user id that is not a string at listSessions() and destroyAllForUser()', async () => {
        const { a } = rig();
        await expect(a.listSessions(42 as unknown as string)).rejects.toThrow(
          "sessions.listSessions(userId) takes the user's id as a string, as given to setUser (String(user.id)); got a number",
        );
        await expect(a.destroyAllForUser({ id: 1 } as unknown as string)).rejects.toBeInstanceOf(ConfigError);
      });

      it('refuses functions, BigInt and circular values at the set() call', async () => {
        const { a, calls, reset } = rig();
        reset();
        const s = a.open(undefined);
        const circular: Loose = { name: 'loop' };
        circular.self = circular;
        const bad: [string, unknown][] = [
          ['fn', () => 1],
          ['big', 10n],
          ['nestedBig', { total: 1n }],
          ['loop', circular],
          ['sym', Symbol('x')],
        ];
        for (const [key, value] of bad) {
          let thrown: unknown;
          try {
            s.set(key, value);
          } catch (err) {
            thrown = err;
          }
          expect(thrown, key).toBeInstanceOf(SessionValueError);
          expect((thrown as Error).message, key).toContain(`"${key}"`);
        }
        await s.commit();
        expect(calls).toEqual([]);
        expect(a.setCookieHeader(s)).toBeUndefined();
      });
    });

    describe('destroy and regenerate', () => {
      it('destroy clears the cookie and the id is refused from then on', async () => {
        const { a, b } = rig();
        const { cookie, id } = await seed(a, { a: 1 });
        const r = await request(a, cookie, (s) => s.destroy());
        expect(r.setCookie).toMatch(new RegExp(`^${a.cookieName}=;.*Max-Age=0`));
        expect(r.cookie).toBeUndefined();
        const fresh = b.open(cookie);
        expect(await fresh.load()).toBe(false);
        expect(await fresh.get('a')).toBeUndefined();
        expect(fresh.cookieAction).toBe('clear');
        fresh.set('b', 2);
        await fresh.commit();
        expect(fresh.id).not.toBe(id);
        expect(await stored(id)).toBeNull();
        expect((await stored(fresh.id))?.attributes).toEqual({ b: '2' });
      });

      it('never resurrects a session destroyed while another request was writing to it', async () => {
        const { a, b } = rig();
        // Deterministic order: the destroy lands between the writer's load and its commit.
        const { cookie, id } = await seed(a, { a: 1 });
        const loaded = a.open(cookie);
        expect(await loaded.get('a')).toBe(1);
        const blind = a.open(cookie);
        blind.set('blind', true);
        await request(b, cookie, (s) => s.destroy());
        loaded.set('late', 1);
        await loaded.commit();
        expect(loaded.id).toBeNull();
        expect(a.setCookieHeader(loaded)).toMatch(/Max-Age=0/);
        await blind.commit();
        // A blind write cannot know; it gets a brand-new, empty session, never the old id or data.
        expect(blind.id).not.toBe(id);
        expect((await stored(blind.id))?.attributes).toEqual({ blind: 'true' });
        expect(await stored(id)).toBeNull();
        expect(await a.open(cookie).load()).toBe(false);

        // Truly concurrent: whatever the interleaving, the id stays dead.
        for (let round = 0; round < 10; round++) {
          const s = await seed(a, { a: round });
          const writer = (round % 2 ? a : b).open(s.cookie);
          await writer.get('a');
          writer.set('late', round);
          await Promise.all([writer.commit(), request(round % 2 ? b : a, s.cookie, (x) => x.destroy())]);
          expect(await stored(s.id), `round ${round}`).toBeNull();
          expect(await b.open(s.cookie).load(), `round ${round}`).toBe(false);
        }
      });

      it('regenerate({ keepData: true }) moves the data to a new id and kills the old one', async () => {
        const { a, b } = rig();
        const { cookie, id } = await seed(a, { cart: ['x'], n: 1 });
        const r = await request(a, cookie, async (s) => {
          await s.regenerate({ keepData: true });
          s.set('after', true);
        });
        expect(r.session.id).not.toBe(id);
        expect(r.setCookie).toBeDefined();
        expect(r.cookie).not.toBe(cookie);
        expect(await b.open(cookie).load()).toBe(false);
        expect(await stored(id)).toBeNull();
        expect((await request(b, r.cookie, (s) => s.all())).result).toEqual({ cart: ['x'], n: 1, after: true });
      });

      it('regenerate() without keepData starts empty under a new id', async () => {
        const { a, b } = rig();
        const { cookie, id } = await seed(a, { cart: ['x'] });
        const r = await request(a, cookie, async (s) => {
          await s.regenerate();
          return [await s.get('cart'), await s.all()];
        });
        expect(r.result).toEqual([undefined, {}]);
        expect(r.session.id).not.toBe(id);
        expect(r.cookie).not.toBe(cookie);
        expect(await b.open(cookie).load()).toBe(false);
        const next = b.open(r.cookie);
        expect(await next.load()).toBe(true);
        expect(await next.all()).toEqual({});
      });
    });

    describe('touch and timeouts', () => {
      it('with touchInterval 0, a read-only request slides the idle deadline without bumping rev', async () => {
        const { a, calls, reset } = rig({ touchInterval: 0 });
        const { cookie, id } = await seed(a, { a: 1 });
        const before = await stored(id);
        await sleep(30);
        reset();
        await request(a, cookie, (s) => s.get('a'));
        expect(calls).toEqual(['load', 'touch']);
        const after = await stored(id);
        expect(after?.meta.rev).toBe(before?.meta.rev);
        expect(after?.attributes).toEqual(before?.attributes);
        expect(after?.meta.idleDeadline).toBeGreaterThan(before?.meta.idleDeadline ?? Number.POSITIVE_INFINITY);
      });

      it('with a large touchInterval, a read-only request makes no write at all', async () => {
        const { a, calls, reset } = rig({ touchInterval: '1h' });
        const { cookie, id } = await seed(a, { a: 1 });
        const before = await stored(id);
        await sleep(30);
        reset();
        await request(a, cookie, (s) => s.get('a'));
        expect(calls).toEqual(['load']);
        expect((await stored(id))?.meta).toEqual(before?.meta);
      });

      it('ends a session after the idle timeout, and activity keeps it alive until then', async () => {
        const { a, b } = rig({ idleTimeout: 400, touchInterval: 0 });
        const { cookie, id } = await seed(a, { a: 1 });
        for (let i = 0; i < 4; i++) {
          await sleep(150); // 600 ms in all: alive only because each read slides the deadline
          expect((await request(i % 2 ? a : b, cookie, (s) => s.get('a'))).result, `read ${i}`).toBe(1);
        }
        await sleep(550);
        const late = await request(b, cookie, async (s) => {
          const value = await s.get('a');
          s.set('again', 1);
          return value;
        });
        expect(late.result).toBeUndefined();
        expect(late.session.id).not.toBe(id);
        expect(await stored(id)).toBeNull();
      });

      it('ends a session at the absolute timeout however active it is', async () => {
        const { a, b } = rig({ absoluteTimeout: 400, idleTimeout: '1h', touchInterval: 0 });
        const { cookie } = await seed(a, { a: 1 });
        for (let i = 0; i < 2; i++) {
          await sleep(100);
          expect((await request(a, cookie, (s) => s.increment('hits'))).result).toBe(i + 1);
        }
        await sleep(350);
        const late = await request(b, cookie, (s) => s.get('a'));
        expect(late.result).toBeUndefined();
        expect(late.setCookie).toMatch(/Max-Age=0/);
      });
    });

    describe('a lifetime of its own (remember me)', () => {
      const maxAge = (setCookie: string | undefined) => {
        const m = /Max-Age=(\d+)/.exec(setCookie ?? '');
        return m ? Number(m[1]) : null;
      };

      it('set at login, it holds on every node: reads, write-only commits, the throttled touch and manager.touch slide by it', async () => {
        const { a, b } = rig({ idleTimeout: 300, touchInterval: 0 });
        const remembered = await seed(a, { cart: ['x'] });
        const login = await request(b, remembered.cookie, async (s) => {
          await s.regenerate({ keepData: true });
          s.setUser('ann');
          s.setLifetime({ idle: 5000, absolute: '1m' });
        });
        const id = login.session.id;
        expect(maxAge(login.setCookie)).toBeGreaterThanOrEqual(59);
        expect(maxAge(login.setCookie)).toBeLessThanOrEqual(60);
        const ordinary = await request(a, undefined, (s) => s.set('cart', ['y']));
        expect(ordinary.setCookie).toMatch(/^shoal\.sid=/);
        expect(maxAge(ordinary.setCookie)).toBeNull();
        const ownIdle = async () => ((await stored(id))?.meta.idleDeadline ?? 0) - Date.now();
        expect((await stored(id))?.meta.idleMs).toBe(5000);
        await sleep(400); // past the manager's idle timeout
        expect((await request(a, login.cookie, (s) => s.get('cart'))).result).toEqual(['x']);
        expect(await ownIdle()).toBeGreaterThan(4000); // the read's touch slid it by 5 s, not 300 ms
        await sleep(400);
        const blind = await request(b, login.cookie, (s) => s.set('step', 2)); // never loads the session
        expect(blind.setCookie).toBeUndefined();
        expect(await ownIdle()).toBeGreaterThan(4000);
        await sleep(400);
        expect(await b.touch(id as string)).toBe(true); // a gateway's socket activity
        expect(await ownIdle()).toBeGreaterThan(4500);
        await sleep(400);
        expect((await request(b, login.cookie, (s) => s.all())).result).toEqual({ cart: ['x'], step: 2 });
        // The ordinary session of the same age ended after the manager's 300 ms.
        const late = await request(b, ordinary.cookie, (s) => s.get('cart'));
        expect(late.result).toBeUndefined();
        expect(late.setCookie).toMatch(/Max-Age=0/);
      });

      it('set before the session exists, it is created with it; regenerate keeps it; null goes back to the defaults', async () => {
        const { a, b } = rig({ idleTimeout: '30m', absoluteTimeout: '12h' });
        const HOUR = 3_600_000;
        // A lifetime alone is nothing to keep: no session, no cookie.
        const alone = await request(a, undefined, (s) => s.setLifetime({ idle: '1d' }));
        expect(alone.session.id).toBeNull();
        expect(alone.setCookie).toBeUndefined();
        const first = await request(a, undefined, (s) => {
          s.setLifetime({ idle: '1d' });
          s.set('a', 1);
        });
        const created = await stored(first.session.id);
        // absolute left out: the longer of absoluteTimeout (12h) and idle (1d).
        expect(created?.meta.idleMs).toBe(24 * HOUR);
        expect((created?.meta.absoluteDeadline ?? 0) - (created?.meta.createdAt ?? 0)).toBe(24 * HOUR);
        expect(maxAge(first.setCookie)).toBeGreaterThan(24 * 3600 - 5);
        const rotated = await request(b, first.cookie, (s) => s.regenerate({ keepData: true }));
        expect(rotated.session.id).not.toBe(first.session.id);
        const moved = await stored(rotated.session.id);
        expect(moved?.meta.idleMs).toBe(24 * HOUR);
        expect((moved?.meta.absoluteDeadline ?? 0) - (moved?.meta.createdAt ?? 0)).toBe(24 * HOUR);
        expect(maxAge(rotated.setCookie)).toBeGreaterThan(24 * 3600 - 5);
        expect(await stored(first.session.id)).toBeNull();
        // Set again with the same values: written, but the cookie need not be sent again.
        const same = await request(a, rotated.cookie, (s) => s.setLifetime({ idle: '1d' }));
        expect(same.setCookie).toBeUndefined();
        const back = await request(a, rotated.cookie, (s) => s.setLifetime(null));
        const plain = await stored(rotated.session.id);
        expect(plain?.meta.idleMs).toBeUndefined();
        expect((plain?.meta.absoluteDeadline ?? 0) - (plain?.meta.createdAt ?? 0)).toBe(12 * HOUR);
        expect(plain?.meta.idleDeadline ?? 0).toBeLessThanOrEqual(Date.now() + 30 * 60_000);
        // The cookie is sent again, ending with the browser session as the manager's cookie does.
        expect(back.setCookie).toMatch(/^shoal\.sid=/);
        expect(maxAge(back.setCookie)).toBeNull();
        expect((await request(b, back.cookie, (s) => s.get('a'))).result).toBe(1);
      });

      it('refuses a bad lifetime at the call with a one-line SessionValueError saying what to do, and writes nothing', async () => {
        const { a, calls, reset } = rig();
        const { cookie, id } = await seed(a, { a: 1 });
        const before = await stored(id);
        const bad: [unknown, RegExp][] = [
          [{ idle: -1 }, /idle must be a duration longer than 0.*got -1/],
          [{ idle: 0 }, /idle must be a duration longer than 0.*got 0/],
          [{ absolute: '0s' }, /absolute must be a duration longer than 0.*got "0s"/],
          [{ idle: 'soon' }, /idle must be a duration longer than 0, such as '30d'.*got "soon"/],
          [{ idle: '5' }, /got "5"/],
          [{ idle: Number.NaN }, /got NaN/],
          [{ idle: '30d', absolute: '7d' }, /idle \("30d"\) is longer than absolute \("7d"\).*leave absolute out/],
          [{ idle: '401d' }, /longer than 400 days/],
          [{}, /needs idle and\/or absolute/],
          [{ idleTimeout: '30d' }, /does not know "idleTimeout"/],
          ['30d', /takes \{ idle, absolute \}/],
        ];
        const s = a.open(cookie);
        for (const [lifetime, message] of bad) {
          let thrown: unknown;
          try {
            s.setLifetime(lifetime as Parameters<typeof s.setLifetime>[0]);
          } catch (err) {
            thrown = err;
          }
          expect(thrown, JSON.stringify(lifetime)).toBeInstanceOf(SessionValueError);
          const text = (thrown as Error).message;
          expect(text).toMatch(message);
          expect(text).toMatch(/^session\.setLifetime\(\).*nothing was changed$/);
          expect(text).not.toContain('\n');
        }
        reset();
        await s.commit();
        expect(calls).toEqual([]);
        expect(a.setCookieHeader(s)).toBeUndefined();
        expect(await stored(id)).toEqual(before);
      });

      it('ends with idle-timeout at its own idle deadline and absolute-timeout at its own absolute one', async (ctx) => {
        if (!nodes.a.capabilities.lifecycle) return ctx.skip('the store cannot list ended sessions: no onSessionEnd');
        const ends: { id: string; reason: string }[] = [];
        const { a, b } = rig({
          idleTimeout: '1h',
          sweep: { enabled: true, interval: '1h' },
          onSessionEnd: (snapshot, { reason }) => {
            ends.push({ id: snapshot.id, reason });
          },
        });
        const idle = await request(a, undefined, (s) => {
          s.set('who', 'idle');
          s.setLifetime({ idle: 300 });
        });
        const absolute = await request(b, undefined, (s) => {
          s.set('who', 'absolute');
          s.setLifetime({ absolute: 300 });
        });
        const ids = [idle.session.id, absolute.session.id];
        await sleep(500);
        for (let round = 0; round < 10; round++) await Promise.all([a.sweep(), b.sweep()]);
        expect(ends.filter((e) => ids.includes(e.id)).sort((x, y) => x.reason.localeCompare(y.reason))).toEqual([
          { id: absolute.session.id, reason: 'absolute-timeout' },
          { id: idle.session.id, reason: 'idle-timeout' },
        ]);
      });
    });

    describe('cookies', () => {
      it('accepts a cookie signed by a rotated-out secret while the ring still holds it, and not after', async () => {
        const oldSecret = newSecret();
        const fresh = newSecret();
        const { a: before } = rig({ secrets: [oldSecret] });
        const { a: during } = rig({ secrets: [fresh, oldSecret] });
        const { a: after, calls, reset } = rig({ secrets: [fresh] });
        const { cookie, id } = await seed(before, { a: 1 });
        const snapshot = await stored(id);
        expect((await request(during, cookie, (s) => s.get('a'))).result).toBe(1);
        // New cookies are signed with the newest secret.
        const minted = await seed(during, { b: 2 });
        expect((await request(after, minted.cookie, (s) => s.get('b'))).result).toBe(2);

        reset();
        const refused = await request(after, cookie, async (s) => {
          const value = await s.get('a');
          s.set('mine', true);
          return value;
        });
        expect(refused.result).toBeUndefined();
        expect(calls).toEqual(['create']);
        expect(refused.session.id).not.toBe(id);
        expect(await stored(id)).toEqual(snapshot);
      });

      it('refuses tampered, unsigned, unissued, duplicated and oversized cookies; writes get a brand-new id', async () => {
        const { a, calls, reset } = rig();
        const { cookie, id } = await seed(a, { secret: 'real user data' });
        const snapshot = await stored(id);
        const name = a.cookieName;
        const signed = a.sign(id);
        const mac = signed.slice(id.length + 1);
        const otherChar = (c: string) => (c === 'A' ? 'B' : 'A');
        const unissued = newSessionId();
        const cases: { label: string; header: string; presented: string; loads: boolean }[] = [
          {
            label: 'tampered signature',
            header: `${name}=${id}.${mac.slice(0, -1)}${otherChar(mac.slice(-1))}`,
            presented: id,
            loads: false,
          },
          {
            label: 'tampered id',
            header: `${name}=${otherChar(id[0] ?? '')}${id.slice(1)}.${mac}`,
            presented: id,
            loads: false,
          },
          { label: 'unsigned id', header: `${name}=${id}`, presented: id, loads: false },
          { label: 'empty value', header: `${name}=`, presented: id, loads: false },
          {
            label: 'unissued but well signed',
            header: `${name}=${a.sign(unissued)}`,
            presented: unissued,
            loads: true,
          },
          { label: 'duplicated', header: `${cookie}; other=1; ${cookie}`, presented: id, loads: false },
          { label: 'oversized', header: `${cookie}${'A'.repeat(4100)}`, presented: id, loads: false },
        ];
        expect(cookie).toBe(`${name}=${signed}`);
        for (const c of cases) {
          // Read only: nothing to see, the cookie is cleared, the store is not even asked.
          reset();
          const reader = await request(a, c.header, (s) => s.get('secret'));
          expect(reader.result, c.label).toBeUndefined();
          expect(reader.setCookie, c.label).toMatch(/Max-Age=0/);
          expect(calls, c.label).toEqual(c.loads ? ['load'] : []);
          // A write: a fresh session under a fresh id, never the presented one.
          const writer = await request(a, c.header, (s) => s.set('planted', c.label));
          const newId = writer.session.id;
          expect(newId, c.label).not.toBeNull();
          expect(newId, c.label).not.toBe(c.presented);
          expect(newId, c.label).not.toBe(id);
          expect(writer.cookie, c.label).toBe(`${name}=${a.sign(newId ?? '')}`);
          expect((await stored(newId))?.attributes, c.label).toEqual({ planted: JSON.stringify(c.label) });
          expect(await stored(c.presented), c.label).toEqual(c.presented === id ? snapshot : null);
        }
        expect(await stored(id)).toEqual(snapshot);
      });
    });

    describe('typed sessions', () => {
      type Shop = { cart: { items: string[] }; n: number };
      const isCart = (v: unknown): v is Shop['cart'] =>
        typeof v === 'object' &&
        v !== null &&
        Array.isArray((v as { items?: unknown }).items) &&
        (v as { items: unknown[] }).items.every((x) => typeof x === 'string');

      it('types get/set from the schema and validates values at runtime', async () => {
        const manager = defineSession<Shop>({
          store: nodes.a,
          secrets: [secret],
          cookie: { secure: false },
          sweep: { enabled: false },
          validate: {
            cart: (v) => {
              if (!isCart(v)) throw new Error('cart must be { items: string[] }');
              return v;
            },
            n: (v) => {
              if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error('n must be an integer');
              return v;
            },
          },
        });
        const first = await request(manager, undefined, async (s) => {
          s.set('cart', { items: ['apple'] });
          s.set('n', 2);
          const cart = await s.get('cart');
          const firstItem: string | undefined = cart?.items[0];
          const n: number | undefined = await s.get('n');
          expect(() => {
            // @ts-expect-error n is a number
            s.set('n', 'three');
          }).toThrow(/"n" failed validation: n must be an integer/);
          expect(() => {
            // @ts-expect-error items are strings
            s.set('cart', { items: [1] });
          }).toThrow(SessionValueError);
          return [firstItem, n];
        });
        expect(first.result).toEqual(['apple', 2]);
        const id = first.session.id ?? '';

        // A value that got into the store some other way is refused on read.
        await nodes.a.commit(id, { set: { n: '"x"' } }, { now: Date.now(), idleDeadline: Date.now() + 60_000 });
        const reader = manager.open(first.cookie);
        expect((await reader.get('cart'))?.items).toEqual(['apple']);
        await expect(reader.get('n')).rejects.toBeInstanceOf(SessionValueError);
        await expect(reader.update('n', (cur) => (cur ?? 0) + 1)).rejects.toBeInstanceOf(SessionValueError);
      });
    });

    describe('lifecycle hooks', () => {
      it('fires onSessionStart exactly once per created session', async () => {
        const started: string[] = [];
        const { a, b } = rig({
          onSessionStart: (s) => {
            started.push(s.id);
          },
        });
        const one = await request(a, undefined, (s) => s.set('a', 1));
        await request(b, one.cookie, (s) => s.set('b', 2));
        await Promise.all(range(10).map((i) => request(i % 2 ? a : b, one.cookie, (s) => s.increment('n'))));
        const two = await request(a, undefined, async (s) => {
          await s.increment('n');
          await s.increment('n');
          s.set('c', 3);
          await s.update('list', (cur) => [...((cur as number[] | undefined) ?? []), 1]);
        });
        await request(b, undefined, (s) => s.get('nothing'));
        const three = await request(b, undefined, (s) => s.update('list', () => [1]));
        // Rotation moves a session; it does not start one (and it does not end one either).
        const rotated = await request(a, one.cookie, (s) => s.regenerate({ keepData: true }));
        expect(rotated.session.id).not.toBe(one.session.id);
        expect(started).toEqual([one.session.id, two.session.id, three.session.id]);
      });

      /** Sweeps on both nodes until nothing more is due; every end either node handles lands in `ends`. */
      const sweepBoth = async (...managers: { sweep(): Promise<number> }[]) => {
        for (let round = 0; round < 20; round++) {
          const handled = await Promise.all(managers.map((m) => m.sweep()));
          if (handled.every((n) => n === 0)) return;
        }
      };
      type End = { id: string; reason: string; userId: string | null; attributes: Record<string, unknown> };
      /** A rig whose two nodes record every end they handle; they sweep only when told (sweepBoth). */
      const endRig = (options: Partial<SessionOptions<Loose>> = {}) => {
        const ends: End[] = [];
        const nodesOf = rig({
          ...options,
          sweep: { enabled: true, interval: '1h' },
          onSessionEnd: (snapshot, { reason }) => {
            ends.push({ id: snapshot.id, reason, userId: snapshot.userId, attributes: snapshot.attributes });
          },
        });
        return { ...nodesOf, ends };
      };
      const endsOf = (ends: End[], ids: (string | null)[]) =>
        ends.filter((e) => ids.includes(e.id)).sort((x, y) => (x.userId ?? '').localeCompare(y.userId ?? ''));

      it('regenerate then logout: one end (destroyed) for the session under its new id, none for the old id', async (ctx) => {
        if (!nodes.a.capabilities.lifecycle) return ctx.skip('the store cannot list ended sessions: no onSessionEnd');
        const { a, b, ends } = endRig();
        const kept = await seed(a, { cart: ['x'] });
        const keptLogin = await request(b, kept.cookie, async (s) => {
          await s.regenerate({ keepData: true });
          s.setUser('alice');
          s.set('step', 'in');
        });
        const emptied = await seed(b, { cart: ['y'] });
        const emptiedLogin = await request(a, emptied.cookie, async (s) => {
          await s.regenerate();
          s.setUser('bob');
        });
        const ids = [kept.id, keptLogin.session.id, emptied.id, emptiedLogin.session.id];
        expect(new Set(ids).size).toBe(4);
        await sweepBoth(a, b);
        expect(endsOf(ends, ids), 'rotation is not an end').toEqual([]);
        await request(a, keptLogin.cookie, (s) => s.destroy());
        await request(b, emptiedLogin.cookie, (s) => s.destroy());
        await sweepBoth(a, b);
        await sweepBoth(b, a);
        expect(endsOf(ends, ids)).toEqual([
          { id: keptLogin.session.id, reason: 'destroyed', userId: 'alice', attributes: { cart: ['x'], step: 'in' } },
          { id: emptiedLogin.session.id, reason: 'destroyed', userId: 'bob', attributes: {} },
        ]);
      });

      it('regenerate then idle timeout: one end (idle-timeout) for the session under its new id, none for the old id', async (ctx) => {
        if (!nodes.a.capabilities.lifecycle) return ctx.skip('the store cannot list ended sessions: no onSessionEnd');
        const { a, b, ends } = endRig({ idleTimeout: 400, touchInterval: 0 });
        const guest = await seed(a, { cart: ['z'] });
        const login = await request(b, guest.cookie, async (s) => {
          await s.regenerate({ keepData: true });
          s.setUser('carol');
        });
        const ids = [guest.id, login.session.id];
        await sleep(600);
        await sweepBoth(a, b);
        await sweepBoth(b, a);
        expect(endsOf(ends, ids)).toEqual([
          { id: login.session.id, reason: 'idle-timeout', userId: 'carol', attributes: { cart: ['z'] } },
        ]);
      });
    });
  });

  // Locks, size budget, encryption at rest, client scope.
  describeSessionSecurity(name, connectStore, skipReason);
  describeNearCache(name, connectStore, skipReason);
}
