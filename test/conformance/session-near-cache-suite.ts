import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { metrics } from '../../src/core/metrics.js';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionOptions, SessionSchema } from '../../src/session/options.js';
import type { StoredSession } from '../../src/stores/contract.js';
import { type ConnectStore, type Loose, request, seed, twoNodes } from './session-rig.js';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const NO_CAPABILITY = 'the store has no loadIfChanged: the near cache is off and every read is a plain load';

/** The process-wide near-cache read counter for one result (prom-client). */
async function counted(result: string): Promise<number> {
  const metric = metrics().registry.getSingleMetric('shoal_session_near_cache_reads_total');
  const values = (await metric?.get())?.values ?? [];
  return values.find((v) => v.labels.scope === 'session' && v.labels.result === result)?.value ?? 0;
}

/**
 * The optional L1 near cache over a real store: two managers (two web nodes) on two
 * clients of one store, both caching. Part of the session conformance suite.
 */
export function describeNearCache(name: string, connectStore: ConnectStore, skipReason?: string): void {
  describe.skipIf(skipReason !== undefined)(`session near cache: ${name}`, () => {
    const nodes = twoNodes(connectStore);
    const secret = randomBytes(32).toString('base64url');

    const rig = <T extends SessionSchema = Loose>(options: Partial<SessionOptions<T>> = {}) => {
      const base = {
        secrets: [secret],
        cookie: { secure: false },
        sweep: { enabled: false },
        nearCache: {},
        ...options,
      };
      const a = new SessionManager<T>({ ...base, store: nodes.a });
      const b = new SessionManager<T>({ ...base, store: nodes.b });
      nodes.track(a as SessionManager, b as SessionManager);
      return { a, b };
    };
    const read = async (m: SessionManager, cookie: string, key: string) =>
      (await request(m, cookie, (s) => s.get(key))).result;
    const stored = (id: string): Promise<StoredSession | null> => nodes.a.load(id, Date.now());
    const stats = (m: SessionManager) => {
      const s = m.nearCache;
      if (!s) throw new Error('near cache is off');
      return { ...s };
    };

    it('is off by default; on, it needs a store with loadIfChanged and refuses bad limits', () => {
      expect(rig({ nearCache: undefined }).a.nearCache).toBeNull();
      expect(rig({ nearCache: false }).a.nearCache).toBeNull();
      const { a } = rig();
      if (nodes.a.loadIfChanged) expect(a.nearCache).toMatchObject({ entries: 0, bytes: 0 });
      else expect(a.nearCache).toBeNull();
      expect(() => rig({ nearCache: { maxEntries: 0 } })).toThrow(ConfigError);
      expect(() => rig({ nearCache: { maxBytes: 1.5 } })).toThrow(/nearCache.maxBytes must be a positive whole number/);
    });

    it('falls back to plain loads on a store that does not declare loadIfChanged', async () => {
      // The real store with the optional method hidden, as memcached presents itself.
      const without = new Proxy(nodes.a, {
        get: (target, prop, receiver) => (prop === 'loadIfChanged' ? undefined : Reflect.get(target, prop, receiver)),
      });
      const a = new SessionManager({
        secrets: [secret],
        cookie: { secure: false },
        sweep: { enabled: false },
        store: without,
        nearCache: {},
      });
      const { b } = rig();
      nodes.track(a);
      expect(a.nearCache).toBeNull();
      const { cookie } = await seed(b, { v: 0 });
      for (const i of range(3)) {
        expect(await read(a, cookie, 'v')).toBe(i);
        await request(b, cookie, (s) => s.set('v', i + 1));
      }
    });

    it("never serves a stale read: after a commit returns on one node, the other node's next read has it (60 rounds)", async () => {
      const { a, b } = rig();
      const big = 'x'.repeat(4000);
      const { cookie, id } = await seed(a, { v: -1, n: 0, list: [], big });
      const cached = nodes.a.loadIfChanged !== undefined;
      for (const i of range(60)) {
        const [writer, other] = i % 3 === 2 ? [a, b] : [b, a];
        // Both nodes hold the current state (twice on the writer's peer: the second read is a hit).
        expect(await read(other, cookie, 'v')).toBe(i - 1);
        expect(await read(other, cookie, 'v')).toBe(i - 1);
        expect(await read(writer, cookie, 'v')).toBe(i - 1);
        // A different kind of write each round: plain set, increment, update(), in-place mutation.
        await request(writer, cookie, async (s) => {
          s.set('v', i);
          if (i % 4 === 1) await s.increment('n');
          if (i % 4 === 2) await s.update('n', (cur) => ((cur as number) ?? 0) + 1);
          if (i % 4 === 3) ((await s.get('list')) as number[]).push(i);
        });
        for (const node of [other, writer]) {
          const seen = (await request(node, cookie, (s) => s.all())).result;
          expect(seen.v).toBe(i);
          expect(seen.n).toBe(Math.floor((i + 3) / 4) + Math.floor((i + 2) / 4));
          expect(seen.list).toEqual(range(i + 1).filter((k) => k % 4 === 3));
          expect(seen.big).toBe(big);
        }
      }
      expect((await stored(id))?.attributes.v).toBe('59');
      if (cached) {
        const s = stats(a);
        expect(s.hits).toBeGreaterThanOrEqual(40);
        expect(s.changed).toBeGreaterThanOrEqual(40);
        expect(s.entries).toBe(1);
      }
    });

    it('moves its own entry forward on commit: the next read on that node is a hit with the new values', async (ctx) => {
      if (!nodes.a.loadIfChanged) return ctx.skip(NO_CAPABILITY);
      const { a, b } = rig();
      const { cookie } = await seed(a, { x: 0 }); // a new session is kept as created
      const hitsBefore = await counted('hit');
      let before = stats(a);
      expect(await read(a, cookie, 'x')).toBe(0);
      expect(stats(a).hits).toBe(before.hits + 1);
      await request(a, cookie, async (s) => {
        s.set('x', 1);
        s.delete('nothing');
        await s.increment('n', 5);
      });
      await request(a, cookie, (s) => s.update('u', () => 'u1'));
      before = stats(a);
      expect((await request(a, cookie, (s) => s.all())).result).toEqual({ x: 1, n: 5, u: 'u1' });
      expect(stats(a)).toMatchObject({ hits: before.hits + 1, changed: before.changed, absent: before.absent });
      // Another node's commit: the rev moved, so the full record comes back.
      await request(b, cookie, (s) => s.set('y', 'from b'));
      before = stats(a);
      expect((await request(a, cookie, (s) => s.all())).result).toEqual({ x: 1, n: 5, u: 'u1', y: 'from b' });
      expect(stats(a).changed).toBe(before.changed + 1);
      // A commit from this node on top of one it has not seen: its entry cannot move forward.
      await request(b, cookie, (s) => s.set('y', 'from b again'));
      await request(a, cookie, (s) => s.set('z', 'blind'));
      expect((await request(a, cookie, (s) => s.all())).result).toMatchObject({ y: 'from b again', z: 'blind' });
      // Two commits from this node racing each other: whatever order they land in, reads are exact.
      await Promise.all(range(6).map((i) => request(a, cookie, (s) => s.set(`k${i}`, i))));
      const all = (await request(a, cookie, (s) => s.all())).result;
      for (const i of range(6)) expect(all[`k${i}`]).toBe(i);
      expect(await counted('hit')).toBeGreaterThan(hitsBefore);
    });

    it('drops a destroyed or rotated session: the next read on any node finds none', async (ctx) => {
      if (!nodes.a.loadIfChanged) return ctx.skip(NO_CAPABILITY);
      const { a, b } = rig();
      const one = await seed(a, { v: 'one' });
      expect(await read(b, one.cookie, 'v')).toBe('one');
      await request(b, one.cookie, (s) => s.destroy());
      const before = stats(a);
      const after = await request(a, one.cookie, (s) => s.get('v'));
      expect(after.result).toBeUndefined();
      expect(after.setCookie).toMatch(/Max-Age=0/);
      expect(stats(a)).toMatchObject({ gone: before.gone + 1, entries: before.entries - 1 });

      const two = await seed(b, { v: 'two' });
      expect(await read(a, two.cookie, 'v')).toBe('two');
      const rotated = await request(b, two.cookie, (s) => s.regenerate({ keepData: true }));
      expect((await request(a, two.cookie, (s) => s.get('v'))).result).toBeUndefined();
      expect(await read(a, rotated.cookie as string, 'v')).toBe('two');
    });

    it('with encryption: decrypted values are reused only while the rev holds; the store sees ciphertext', async (ctx) => {
      if (!nodes.a.loadIfChanged) return ctx.skip(NO_CAPABILITY);
      const keys = [randomBytes(32).toString('base64')];
      const { a, b } = rig({ encryption: { keys } });
      const { cookie, id } = await seed(a, { card: 'secret-1', nested: { deep: ['secret-x'] } });
      for (const round of range(5)) {
        expect(await read(a, cookie, 'card')).toBe(`secret-${round + 1}`);
        expect(await read(a, cookie, 'card')).toBe(`secret-${round + 1}`);
        await request(b, cookie, (s) => s.set('card', `secret-${round + 2}`));
      }
      await request(a, cookie, async (s) => ((await s.get('nested')) as { deep: string[] }).deep.push('secret-y'));
      expect(await read(b, cookie, 'nested')).toEqual({ deep: ['secret-x', 'secret-y'] });
      expect(await read(a, cookie, 'nested')).toEqual({ deep: ['secret-x', 'secret-y'] });
      for (const value of Object.values((await stored(id))?.attributes ?? {})) expect(value).not.toMatch(/secret/);
      expect(stats(a).hits).toBeGreaterThanOrEqual(5);
      expect((await a.load(id))?.attributes.card).toBe('"secret-6"');
    });

    it('keeps at most maxEntries sessions, the least recently used going first', async (ctx) => {
      if (!nodes.a.loadIfChanged) return ctx.skip(NO_CAPABILITY);
      const { a, b } = rig({ nearCache: { maxEntries: 3 } });
      const sessions = [];
      for (const i of range(5)) sessions.push(await seed(b, { i })); // created on b: a holds nothing yet
      for (const [i, s] of sessions.entries()) {
        expect(await read(a, s.cookie, 'i')).toBe(i);
        expect(stats(a).entries).toBe(Math.min(i + 1, 3));
      }
      expect(stats(a).evictions).toBe(2);
      let before = stats(a);
      expect(await read(a, sessions[4]?.cookie as string, 'i')).toBe(4);
      expect(stats(a).hits).toBe(before.hits + 1);
      before = stats(a);
      expect(await read(a, sessions[0]?.cookie as string, 'i')).toBe(0);
      expect(stats(a)).toMatchObject({ absent: before.absent + 1, entries: 3, hits: before.hits });
    });

    it('keeps at most maxBytes, and never keeps a session larger than a quarter of it', async (ctx) => {
      if (!nodes.a.loadIfChanged) return ctx.skip(NO_CAPABILITY);
      const maxBytes = 8000;
      const { a, b } = rig({ nearCache: { maxBytes } });
      const size = (text: string) => 'v'.length + JSON.stringify(text).length;
      const value = 'y'.repeat(1000);
      for (const _ of range(12)) {
        const s = await seed(b, { v: value });
        expect(await read(a, s.cookie, 'v')).toBe(value);
        const now = stats(a);
        expect(now.bytes).toBeLessThanOrEqual(maxBytes);
        expect(now.bytes).toBe(now.entries * size(value));
      }
      expect(stats(a).entries).toBe(Math.floor(maxBytes / size(value)));
      const huge = 'z'.repeat(maxBytes / 4);
      const big = await seed(b, { v: huge });
      const before = stats(a);
      expect(await read(a, big.cookie, 'v')).toBe(huge);
      expect(await read(a, big.cookie, 'v')).toBe(huge);
      expect(stats(a)).toMatchObject({ absent: before.absent + 2, entries: before.entries, bytes: before.bytes });
    });
  });
}
