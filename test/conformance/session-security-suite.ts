import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, LockTimeoutError, SessionValueError, StoreUnavailableError } from '../../src/core/errors.js';
import { hashId } from '../../src/core/ids.js';
import { defineClientScope } from '../../src/session/client-scope.js';
import type { EndedSnapshot } from '../../src/session/lifecycle.js';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionOptions, SessionSchema } from '../../src/session/options.js';
import type { SessionStore, StoredSession } from '../../src/stores/contract.js';
import { type ConnectStore, type Loose, request, seed, twoNodes } from './session-rig.js';

export type { ConnectStore };

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const newKey = () => randomBytes(32).toString('base64');
const KIB = 1024;

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error(`expected a rejection, got ${String(err)}`);
  return err;
}

/**
 * Locks, size budget, encryption at rest and the client scope, over a real
 * store. Part of the session conformance suite: runs against every backend.
 */
export function describeSessionSecurity(name: string, connectStore: ConnectStore, skipReason?: string): void {
  describe.skipIf(skipReason !== undefined)(`session security: ${name}`, () => {
    const nodes = twoNodes(connectStore);
    const secret = randomBytes(32).toString('base64url');

    /** Two managers — two web nodes — over two clients of one store. */
    const rig = <T extends SessionSchema = Loose>(options: Partial<SessionOptions<T>> = {}) => {
      const base = { secrets: [secret], cookie: { secure: false }, sweep: { enabled: false }, ...options };
      const a = new SessionManager<T>({ ...base, store: options.store ?? nodes.a });
      const b = new SessionManager<T>({ ...base, store: nodes.b });
      nodes.track(a as SessionManager, b as SessionManager);
      return { a, b };
    };
    const stored = (id: string | null): Promise<StoredSession | null> =>
      id === null ? Promise.resolve(null) : nodes.a.load(id, Date.now());

    describe('session.lock()', () => {
      it('runs two holders on two nodes one after the other, with increasing fencing tokens', async () => {
        const { a, b } = rig();
        const { cookie } = await seed(a, { n: 0 });
        const hold = async (m: SessionManager) =>
          m.open(cookie).lock('checkout', async ({ fencingToken }) => {
            const startedAt = Date.now();
            await sleep(150);
            return { fencingToken, startedAt, endedAt: Date.now() };
          });
        const runs = await Promise.all([hold(a), hold(b), hold(a)]);
        runs.sort((x, y) => x.startedAt - y.startedAt);
        for (let i = 1; i < runs.length; i++) {
          const [prev, cur] = [runs[i - 1], runs[i]] as [(typeof runs)[0], (typeof runs)[0]];
          expect(cur.startedAt).toBeGreaterThanOrEqual(prev.endedAt);
          expect(cur.fencingToken).toBeGreaterThan(prev.fencingToken);
        }
        const waited = a.stats.lockWaited + b.stats.lockWaited;
        expect(a.stats.lockAcquired + b.stats.lockAcquired).toBe(3);
        expect(waited).toBe(2);
        expect(a.stats.lockWaitMs + b.stats.lockWaitMs).toBeGreaterThanOrEqual(150 + 300 - 50);
      });

      it('gives up after `wait` with a LockTimeoutError that names the lock, and counts it', async () => {
        const { a, b } = rig();
        const { cookie } = await seed(a, { n: 0 });
        let release: () => void = () => {};
        let acquired: () => void = () => {};
        const holds = new Promise<void>((r) => (acquired = r));
        const holding = a.open(cookie).lock('pay', () => {
          acquired();
          return new Promise<void>((r) => (release = r));
        });
        await holds;
        const started = Date.now();
        let ran = false;
        const err = await rejection(
          b.open(cookie).lock(
            'pay',
            () => {
              ran = true;
            },
            { wait: 200 },
          ),
        );
        const waited = Date.now() - started;
        expect(err).toBeInstanceOf(LockTimeoutError);
        expect(err.message).toMatch(/session lock "pay" is held by another request; gave up after waiting \d+ ms/);
        expect(err.message).toMatch(/raise `wait`/);
        expect(ran).toBe(false);
        expect(waited).toBeGreaterThanOrEqual(190);
        expect(waited).toBeLessThan(1500);
        expect(b.stats.lockTimeouts).toBe(1);
        // Another lock name of the same session is independent.
        expect(await b.open(cookie).lock('other', ({ fencingToken }) => fencingToken, { wait: 0 })).toBeGreaterThan(0);
        release();
        await holding;
        // And once released, the name is free at once.
        expect(await b.open(cookie).lock('pay', () => 'mine', { wait: 0 })).toBe('mine');
      });

      it('releases the lock when fn throws, and rethrows what fn threw', async () => {
        const { a, b } = rig();
        const { cookie } = await seed(a, { n: 0 });
        const err = await rejection(
          a.open(cookie).lock('job', () => {
            throw new Error('boom inside the lock');
          }),
        );
        expect(err.message).toBe('boom inside the lock');
        const started = Date.now();
        expect(await b.open(cookie).lock('job', () => 'free', { wait: 0 })).toBe('free');
        expect(Date.now() - started).toBeLessThan(1000);
      });

      it("lets a crashed holder's lock lapse after its lease", async () => {
        const { a } = rig();
        const { cookie, id } = await seed(a, { n: 0 });
        const crashed = await nodes.b.acquireLock(id, 'job', 'a-process-that-died', 300);
        expect(crashed).not.toBeNull();
        const started = Date.now();
        const token = await a.open(cookie).lock('job', ({ fencingToken }) => fencingToken, { wait: '3s' });
        expect(Date.now() - started).toBeGreaterThanOrEqual(200);
        expect(token).toBeGreaterThan(crashed?.fencingToken ?? Number.POSITIVE_INFINITY);
      });

      it('creates the session when there is none, and the cookie carries it', async () => {
        const { a, b } = rig();
        const r = await request(a, undefined, (s) => s.lock('first', ({ fencingToken }) => fencingToken));
        expect(r.result).toBeGreaterThan(0);
        expect(r.session.id).not.toBeNull();
        expect(r.setCookie).toMatch(new RegExp(`^${a.cookieName}=`));
        expect(await b.open(r.cookie).load()).toBe(true);
      });

      it('refuses a malformed lock name with a ConfigError', async () => {
        const { a } = rig();
        const err = await rejection(a.open(undefined).lock('has space', () => 1));
        expect(err).toBeInstanceOf(ConfigError);
        expect(err.message).toMatch(/lock name "has space" is not valid/);
      });

      it('counts a failed release and logs the hashed id, never the id itself', async () => {
        // Fault injection on the real store: only releaseLock fails; the lock then lapses with its lease.
        const failing = new Proxy(nodes.a, {
          get(target, prop, receiver) {
            if (prop === 'releaseLock')
              return async () => Promise.reject(new StoreUnavailableError(target.kind, 'down'));
            const value: unknown = Reflect.get(target, prop, receiver);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
        const lines: string[] = [];
        const record = (obj: object, msg?: string) => lines.push(JSON.stringify({ ...obj, msg }));
        const { a } = rig({ store: failing, logger: { info: record, warn: record, error: record } });
        const { cookie, id } = await seed(a, { n: 0 });
        expect(await a.open(cookie).lock('job', () => 'done', { lease: 300 })).toBe('done');
        expect(a.stats.lockReleaseFailures).toBe(1);
        expect(lines.join('\n')).toContain(hashId(id));
        expect(lines.join('\n')).not.toContain(id);
      });
    });

    describe('size budget', () => {
      it('refuses an oversized value at set(), naming the attribute and its size; nothing is written', async () => {
        const { a } = rig({ maxSize: KIB });
        const { cookie, id } = await seed(a, { small: 'ok' });
        const before = await stored(id);
        const s = a.open(cookie);
        let err: unknown;
        try {
          s.set('avatar', 'x'.repeat(2000));
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(SessionValueError);
        expect((err as Error).message).toMatch(/"avatar" is 2002 bytes as JSON, over the 1024-byte budget/);
        const update = await rejection(s.update('avatar', () => 'y'.repeat(3000)));
        expect(update).toBeInstanceOf(SessionValueError);
        expect(update.message).toMatch(/"avatar" is 3002 bytes/);
        await s.commit();
        expect(await stored(id)).toMatchObject({ attributes: before?.attributes, meta: { rev: before?.meta.rev } });
      });

      it('refuses at commit a nested mutation that outgrows the budget; nothing is written', async () => {
        const { a } = rig<{ list: string[]; n: number }>({ maxSize: KIB });
        const { cookie, id } = await seed(a, { list: ['a'], n: 1 });
        const before = await stored(id);
        const s = a.open(cookie);
        (await s.get('list'))?.push('z'.repeat(1500));
        s.set('n', 2);
        const err = await rejection(s.commit());
        expect(err).toBeInstanceOf(SessionValueError);
        expect(err.message).toMatch(/"list" is \d{4} bytes as JSON, over the 1024-byte budget.*nothing was written/);
        expect(await stored(id)).toMatchObject({ attributes: before?.attributes, meta: { rev: before?.meta.rev } });
        // The adapters call commit() again: the outcome is the same, never a late partial write.
        await expect(s.commit()).rejects.toBe(err);
      });

      it('refuses a commit whose new values add up to more than the budget, naming the one that crossed it', async () => {
        const { a } = rig({ maxSize: KIB });
        const { cookie, id } = await seed(a, { small: 'ok' });
        const before = await stored(id);
        const s = a.open(cookie);
        s.set('first', 'a'.repeat(600));
        s.set('second', 'b'.repeat(600));
        const err = await rejection(s.commit());
        expect(err).toBeInstanceOf(SessionValueError);
        expect(err.message).toMatch(/"second" \(602 bytes as JSON\) takes .* to 1204 bytes, over the 1024-byte budget/);
        expect((await stored(id))?.meta.rev).toBe(before?.meta.rev);
      });

      it('defaults to 512 KiB', async () => {
        const { a } = rig();
        const s = a.open(undefined);
        expect(() => s.set('blob', 'x'.repeat(512 * KIB - 2))).not.toThrow();
        expect(() => s.set('blob', 'x'.repeat(512 * KIB - 1))).toThrow(/"blob" is 524289 bytes.*524288-byte budget/);
      });
    });

    describe('encryption at rest', () => {
      it('stores no plaintext, reads back on another node, and counts increments by compare-and-swap', async () => {
        const key = newKey();
        const { a, b } = rig({ encryption: { keys: [key] } });
        const { cookie, id } = await seed(a, { card: 'secret-4111', nested: { deep: ['secret-x', 7] } });
        const raw = await stored(id);
        for (const value of Object.values(raw?.attributes ?? {})) {
          expect(value).toMatch(/^\$e1\.[\w-]{8}\.[\w-]{16}\.[\w-]+$/);
          expect(value).not.toMatch(/secret/);
        }
        expect((await request(b, cookie, (s) => s.all())).result).toEqual({
          card: 'secret-4111',
          nested: { deep: ['secret-x', 7] },
        });
        // The same plaintext encrypts differently every time (random IV).
        await request(a, cookie, (s) => s.set('card', 'secret-4111'));
        expect((await stored(id))?.attributes.card).not.toBe(raw?.attributes.card);

        // Each is a compare-and-swap update(): every one counts, losers retry (bounded by updateRetries).
        const totals = await Promise.all(
          range(10).map(async (i) => (await request(i % 2 ? a : b, cookie, (s) => s.increment('hits'))).result),
        );
        expect([...totals].sort((x, y) => x - y)).toEqual(range(10).map((i) => i + 1));
        expect((await stored(id))?.attributes.hits).toMatch(/^\$e1\./);
        const nan = await rejection(request(a, cookie, (s) => s.increment('card')));
        expect(nan).toBeInstanceOf(SessionValueError);
        expect(nan.message).toMatch(/"card".*nothing was written/);
        // manager.load() (what gateways use) gives JSON text, decrypted.
        expect((await b.load(id))?.attributes.card).toBe('"secret-4111"');
      });

      it('rotates keys: new key first, the old one still decrypts; without it the error says what to do', async () => {
        const [oldKey, newKeyText] = [newKey(), newKey()];
        const { a: before } = rig({ encryption: { keys: [oldKey] } });
        const { a: during } = rig({ encryption: { keys: [newKeyText, oldKey] } });
        const { a: after } = rig({ encryption: { keys: [newKeyText] } });
        const { cookie, id } = await seed(before, { old: 'written with the old key' });
        await request(during, cookie, (s) => s.set('fresh', 'written with the new key'));
        const raw = (await stored(id))?.attributes ?? {};
        const kid = (v: string | undefined) => v?.split('.')[1];
        expect(kid(raw.fresh)).not.toBe(kid(raw.old));
        expect((await request(during, cookie, (s) => s.all())).result).toEqual({
          old: 'written with the old key',
          fresh: 'written with the new key',
        });
        expect((await request(after, cookie, (s) => s.get('fresh'))).result).toBe('written with the new key');
        const err = await rejection(request(after, cookie, (s) => s.get('old')));
        expect(err).toBeInstanceOf(SessionValueError);
        expect(err.message).toMatch(
          /"old" was encrypted with a key that is not in the key ring.*SHOAL_ENCRYPTION_KEYS/,
        );
      });

      it('refuses a value swapped in from another session or another attribute', async () => {
        const { a } = rig({ encryption: { keys: [newKey()] } });
        const one = await seed(a, { secret: 'one' });
        const two = await seed(a, { secret: 'two', other: 'x' });
        const fromOne = (await stored(one.id))?.attributes.secret as string;
        const twoSecret = (await stored(two.id))?.attributes.secret as string;
        const now = Date.now();
        await nodes.a.commit(
          two.id,
          { set: { secret: fromOne, other: twoSecret } },
          { now, idleDeadline: now + 60_000 },
        );
        for (const key of ['secret', 'other']) {
          const err = await rejection(request(a, two.cookie, (s) => s.get(key)));
          expect(err, key).toBeInstanceOf(SessionValueError);
          expect(err.message, key).toMatch(
            new RegExp(`"${key}" could not be decrypted: it was encrypted for another session or attribute`),
          );
        }
        expect((await request(a, one.cookie, (s) => s.get('secret'))).result).toBe('one');
      });

      it('re-encrypts for the new id on regenerate({ keepData: true })', async () => {
        const { a, b } = rig({ encryption: { keys: [newKey()] } });
        const { cookie } = await seed(a, { cart: ['x'] });
        const r = await request(a, cookie, (s) => s.regenerate({ keepData: true }));
        expect((await request(b, r.cookie, (s) => s.all())).result).toEqual({ cart: ['x'] });
      });

      it('says why increment() refused, as without encryption: a value that is not a number, or a sum too large', async () => {
        const { a } = rig({ encryption: { keys: [newKey()] } });
        const { cookie } = await seed(a, { word: 'abc', n: Number.MAX_VALUE });
        const word = await request(a, cookie, (s) => s.increment('word').catch((e: unknown) => (e as Error).message));
        expect(word.result).toBe(
          'session.increment("word") needs a number, but "word" holds a string; nothing was written',
        );
        const n = await request(a, cookie, (s) =>
          s.increment('n', Number.MAX_VALUE).catch((e: unknown) => (e as Error).message),
        );
        expect(n.result).toBe(
          `session.increment("n", ${Number.MAX_VALUE}) would take "n" (${Number.MAX_VALUE}) past the largest number; nothing was written`,
        );
        expect((await request(a, cookie, (s) => s.get('n'))).result).toBe(Number.MAX_VALUE);
      });

      it('hands onSessionEnd the decrypted attributes', async (ctx) => {
        if (!nodes.a.capabilities.lifecycle) ctx.skip(`the ${nodes.a.kind} store has no lifecycle capability`);
        // Its own namespace: this sweep must not claim other tests' sessions.
        const store = await connectStore({ namespace: `enc-end-${randomBytes(4).toString('hex')}` });
        const ended: EndedSnapshot[] = [];
        const m = new SessionManager({
          store,
          secrets: [secret],
          cookie: { secure: false },
          sweep: { interval: '1h' },
          encryption: { keys: [newKey()] },
          onSessionEnd: (snapshot) => {
            ended.push(snapshot);
          },
        });
        try {
          const { cookie, id } = await seed(m, { card: 'secret-4111' });
          await request(m, cookie, (s) => s.destroy());
          expect(await m.sweep()).toBe(1);
          expect(ended.map((e) => [e.id, e.attributes])).toEqual([[id, { card: 'secret-4111' }]]);
        } finally {
          await m.close();
          await store.close();
        }
      });

      it('refuses bad key material with a ConfigError that says how to make a key, never echoing it', () => {
        for (const bad of ['short', randomBytes(31).toString('base64'), `${newKey()}!`, '']) {
          let err: unknown;
          try {
            new SessionManager({ store: nodes.a, secrets: [secret], encryption: { keys: [newKey(), bad] } });
          } catch (e) {
            err = e;
          }
          expect(err, bad).toBeInstanceOf(ConfigError);
          expect((err as Error).message).toMatch(/openssl rand -base64 32/);
          if (bad) expect((err as Error).message).not.toContain(bad);
        }
      });
    });

    describe('client scope', () => {
      let clientA: SessionStore;
      let clientB: SessionStore;
      beforeAll(async () => {
        clientA = await connectStore({ namespace: 'client' });
        clientB = await connectStore({ namespace: 'client' });
      });
      afterAll(async () => {
        await Promise.all([clientA?.close(), clientB?.close()]);
      });
      const clientRig = () => {
        const base = { secrets: [secret], cookie: { secure: false }, sweep: { enabled: false } };
        const a = defineClientScope({ ...base, store: clientA });
        const b = defineClientScope({ ...base, store: clientB });
        nodes.track(a, b);
        return { a, b };
      };

      it('has its own persistent cookie and long timeouts', () => {
        const { a } = clientRig();
        expect(a.cookieName).toBe('shoal.client');
        expect(a.config.idleMs).toBe(90 * 86_400_000);
        expect(a.config.absoluteMs).toBe(400 * 86_400_000);
        const secure = defineClientScope({ store: clientA, secrets: [secret], sweep: { enabled: false } });
        nodes.track(secure);
        expect(secure.cookieName).toBe('__Host-shoal-client');
      });

      it('survives logout and login rotation of the session, on every node', async () => {
        const { a: clients, b: clientsB } = clientRig();
        const { a: sessions, b: sessionsB } = rig();
        const c = await request(clients, undefined, (s) => s.set('theme', 'dark'));
        expect(c.setCookie).toMatch(
          /^shoal\.client=[\w-]{22}\.[\w-]+; Path=\/; Max-Age=34560000; HttpOnly; SameSite=Lax$/,
        );
        const s = await seed(sessions, { cart: ['x'] });
        // One browser, both cookies in one header, as the adapters see it.
        const header = (session: string | undefined) => [session, c.cookie].filter(Boolean).join('; ');
        const login = await request(sessions, header(s.cookie), (x) => x.regenerate({ keepData: true }));
        await request(sessionsB, header(login.cookie), (x) => x.destroy());
        expect(await sessions.open(header(login.cookie)).load()).toBe(false);
        for (const m of [clients, clientsB]) {
          expect((await request(m, header(undefined), (x) => x.get('theme'))).result).toBe('dark');
        }
      });

      it('keeps concurrent distinct-key writes and counts concurrent increments from two nodes', async () => {
        const { a, b } = clientRig();
        const c = await request(a, undefined, (s) => s.set('seen', true));
        await Promise.all(range(20).map((i) => request(i % 2 ? a : b, c.cookie, (s) => s.set(`k${i}`, i))));
        const totals = await Promise.all(
          range(20).map(async (i) => (await request(i % 2 ? a : b, c.cookie, (s) => s.increment('visits'))).result),
        );
        expect(Math.max(...totals)).toBe(20);
        const all = (await request(b, c.cookie, (s) => s.all())).result;
        for (const i of range(20)) expect(all[`k${i}`]).toBe(i);
        expect(all).toMatchObject({ seen: true, visits: 20 });
      });

      it('never accepts a client cookie as a session cookie, nor the reverse', async () => {
        const { a: clients } = clientRig();
        const { a: sessions } = rig();
        const c = await request(clients, undefined, (s) => s.set('theme', 'dark'));
        const s = await seed(sessions, { cart: ['x'] });
        const clientValue = (c.cookie ?? '').split('=')[1];
        const sessionValue = s.cookie.split('=')[1];
        const asSession = sessions.open(`${sessions.cookieName}=${clientValue}`);
        expect(await asSession.load()).toBe(false);
        expect(asSession.cookieAction).toBe('clear');
        const asClient = clients.open(`${clients.cookieName}=${sessionValue}`);
        expect(await asClient.load()).toBe(false);
        // Its own namespace: the session store does not hold client records, nor the reverse.
        expect(await stored(c.session.id)).toBeNull();
        expect(await clientA.load(s.id, Date.now())).toBeNull();
      });
    });
  });
}
