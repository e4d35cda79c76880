import { createHmac, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { RedisStore } from 'connect-redis';
import express, { type Request } from 'express';
import expressSession from 'express-session';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import type { SessionStore } from 'shoal';
import { createStore } from 'shoal';
import { ShoalStore, session } from 'shoal/express-session';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { listen, type Served } from '../helpers/listen.js';
import { deleteKeys } from '../helpers/redis-keys.js';

/**
 * Both directions between express-session and shoal, on a real Redis: ShoalStore under
 * express-session itself, and moving the sessions express-session + connect-redis wrote
 * to the drop-in (`migrateFrom`) without logging anyone out.
 */
const skip = await engineSkipReason('redis');
const SECRET = 'store-and-migration-secret-0123456789abcdefgh';
const run = `drop-in-store-${randomUUID().slice(0, 8)}`;
type Loose = Record<string, unknown> & { regenerate(cb: (err?: unknown) => void): void };
const sess = (req: Request) => (req as unknown as { session: Loose }).session;

const servers: Served[] = [];
const closers: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  for (const close of closers) await close();
  const redis = new Redis(ENGINE_URLS.redis);
  for (const pattern of [`shoal:{${run}*`, `shoal:${run}*`, `${run}:*`]) await deleteKeys(redis, pattern);
  redis.disconnect();
});

/** The usual express-session app; only the store differs. */
async function expressSessionApp(
  store: expressSession.Store,
  cookie: expressSession.CookieOptions = {},
): Promise<Served> {
  const app = express();
  app.use(expressSession({ secret: SECRET, store, resave: false, saveUninitialized: false, cookie }));
  app.post('/views', (req, res) => {
    const s = sess(req);
    s.views = ((s.views as number | undefined) ?? 0) + 1;
    s.passport = { user: 'u-alice' };
    res.json({ views: s.views });
  });
  app.get('/read', (req, res) => {
    res.json(Object.fromEntries(Object.entries(sess(req)).filter(([k]) => k !== 'cookie')));
  });
  app.post('/regenerate', (req, res, next) => {
    sess(req).regenerate((err) => (err ? next(err) : res.json({ ok: true })));
  });
  const served = await listen(createServer(app));
  servers.push(served);
  return served;
}

describe.skipIf(skip !== undefined)('ShoalStore: express-session itself over a shoal store', () => {
  let store: SessionStore;
  let shoalStore: ShoalStore;
  let nodes: Served[];

  beforeAll(async () => {
    store = await createStore(ENGINE_URLS.redis, { namespace: `${run}-store` });
    shoalStore = new ShoalStore({ store, indexName: `${run}-index` });
    closers.push(() => store.close());
    nodes = [await expressSessionApp(shoalStore as never), await expressSessionApp(shoalStore as never)];
  });

  it('keeps sessions any node reads, regenerates, and lists, counts and clears them', async () => {
    const browser = new CookieJar();
    for (let i = 0; i < 4; i++) await (await browser.fetch(`${nodes[i % 2]?.url}/views`, { method: 'POST' })).text();
    expect(await (await browser.fetch(`${nodes[1]?.url}/read`)).json()).toEqual({
      views: 4,
      passport: { user: 'u-alice' },
    });
    const before = browser.cookie;
    await (await browser.fetch(`${nodes[0]?.url}/regenerate`, { method: 'POST' })).text();
    expect(browser.cookie).not.toBe(before);
    const replay = await fetch(`${nodes[1]?.url}/read`, { headers: { cookie: before } });
    expect(await replay.json()).toEqual({});

    const other = new CookieJar();
    await (await other.fetch(`${nodes[1]?.url}/views`, { method: 'POST' })).text();
    const call = <T>(fn: (cb: (err: unknown, v?: T) => void) => void) =>
      new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
    // express-session saves a regenerated session even when empty, so there are two.
    expect(await call<number>((cb) => shoalStore.length(cb))).toBe(2);
    const all = await call<Array<Record<string, unknown>>>((cb) => shoalStore.all(cb));
    expect(all.map((s) => s.views ?? null).sort()).toEqual([1, null]);
    await call((cb) => shoalStore.clear(cb));
    expect(await call<number>((cb) => shoalStore.length(cb))).toBe(0);
    expect(await (await other.fetch(`${nodes[0]?.url}/read`)).json()).toEqual({});
  });
});

describe.skipIf(skip !== undefined)('moving from express-session + connect-redis to the drop-in', () => {
  it('reads the sessions connect-redis wrote: same cookie, data kept, moved once, old entry removed', async () => {
    const client = createClient({ url: ENGINE_URLS.redis });
    await client.connect();
    closers.push(() => client.close());
    const legacy = new RedisStore({ client, prefix: `${run}:sess:` });
    const before = await expressSessionApp(legacy);

    const browser = new CookieJar();
    // express-session saves after the headers leave: read each body to the end before going on.
    for (let i = 0; i < 2; i++) await (await browser.fetch(`${before.url}/views`, { method: 'POST' })).text();
    const legacyCookie = browser.cookie;
    expect(legacyCookie).toMatch(/^connect\.sid=s%3A/);
    const redis = new Redis(ENGINE_URLS.redis);
    expect(await redis.keys(`${run}:sess:*`)).toHaveLength(1);

    // The new deploy: the drop-in, reading what connect-redis wrote.
    const middleware = session({
      secret: SECRET,
      store: await createStore(ENGINE_URLS.redis, { namespace: `${run}-drop-in` }),
      resave: false,
      saveUninitialized: false,
      migrateFrom: legacy,
    });
    closers.push(() => middleware.close());
    const app = express();
    app.use(middleware);
    app.get('/read', (req, res) => {
      res.json(Object.fromEntries(Object.entries(sess(req)).filter(([k]) => k !== 'cookie')));
    });
    app.post('/views', (req, res) => {
      const s = sess(req);
      s.views = ((s.views as number | undefined) ?? 0) + 1;
      res.json({ views: s.views });
    });
    app.post('/logout', (req, res, next) => {
      (req as unknown as { session: { destroy(cb: (err?: unknown) => void): void } }).session.destroy((err) =>
        err ? next(err) : res.json({ ok: true }),
      );
    });
    const after = await listen(createServer(app));
    servers.push(after);

    const first = await browser.fetch(`${after.url}/read`);
    expect(await first.json()).toEqual({ views: 2, passport: { user: 'u-alice' } });
    expect(browser.cookie).not.toBe(legacyCookie); // a shoal cookie now (new id, shoal's signature)
    expect(await redis.keys(`${run}:sess:*`)).toHaveLength(0);
    await browser.fetch(`${after.url}/views`, { method: 'POST' });
    expect(await (await browser.fetch(`${after.url}/read`)).json()).toEqual({
      views: 3,
      passport: { user: 'u-alice' },
    });
    // A request the browser sent with the old cookie before the new one reached it lands in the
    // moved session, and gets the same new cookie.
    const inFlight = await fetch(`${after.url}/read`, { headers: { cookie: legacyCookie } });
    expect(await inFlight.json()).toEqual({ views: 3, passport: { user: 'u-alice' } });
    expect(inFlight.headers.getSetCookie().map((line) => line.split(';')[0])).toEqual([browser.cookie]);
    // A minute after the move, the old cookie reaches nothing.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 61_000);
      const replay = await fetch(`${after.url}/read`, { headers: { cookie: legacyCookie } });
      expect(await replay.json()).toEqual({});
      expect(replay.headers.getSetCookie()).toEqual([]);
      expect(await (await browser.fetch(`${after.url}/read`)).json()).toEqual({
        views: 3,
        passport: { user: 'u-alice' },
      });
    } finally {
      vi.useRealTimers();
    }

    // Logged out right after the move: the old cookie does not bring the session back, even within the minute.
    const other = new CookieJar();
    for (let i = 0; i < 2; i++) await (await other.fetch(`${before.url}/views`, { method: 'POST' })).text();
    const otherLegacy = other.cookie;
    expect(await (await other.fetch(`${after.url}/read`)).json()).toEqual({ views: 2, passport: { user: 'u-alice' } });
    expect(await (await other.fetch(`${after.url}/logout`, { method: 'POST' })).json()).toEqual({ ok: true });
    const afterLogout = await fetch(`${after.url}/read`, { headers: { cookie: otherLegacy } });
    expect(await afterLogout.json()).toEqual({});
    expect(afterLogout.headers.getSetCookie()).toEqual([]);

    // A cookie express-session did not sign (another secret) moves nothing and reaches nothing.
    const third = new CookieJar();
    for (let i = 0; i < 2; i++) await (await third.fetch(`${before.url}/views`, { method: 'POST' })).text();
    const legacyId = decodeURIComponent(third.cookie.split('=')[1] ?? '')
      .slice(2)
      .split('.')[0] as string;
    const forged = `connect.sid=${encodeURIComponent(`s:${legacyId}.${signature(legacyId, 'x'.repeat(40))}`)}`;
    const forgedAnswer = await fetch(`${after.url}/read`, { headers: { cookie: forged } });
    expect(await forgedAnswer.json()).toEqual({});
    expect(await redis.keys(`${run}:sess:*`)).toHaveLength(1); // still there, for the real cookie
    expect(await (await third.fetch(`${after.url}/read`)).json()).toEqual({ views: 2, passport: { user: 'u-alice' } });
    redis.disconnect();
  });
});

describe.skipIf(skip !== undefined)('moving a "remember me" session', () => {
  it("gives the moved session its cookie's lifetime on the server at once, as connect-redis gave it its TTL", async () => {
    const client = createClient({ url: ENGINE_URLS.redis });
    await client.connect();
    closers.push(() => client.close());
    const legacy = new RedisStore({ client, prefix: `${run}:remember:` });
    const thirtyDays = 30 * 86_400_000;
    const before = await expressSessionApp(legacy, { maxAge: thirtyDays });
    const browser = new CookieJar();
    await (await browser.fetch(`${before.url}/views`, { method: 'POST' })).text();

    const store = await createStore(ENGINE_URLS.redis, { namespace: `${run}-remember` });
    const middleware = session({ secret: SECRET, store, resave: false, saveUninitialized: false, migrateFrom: legacy });
    closers.push(() => middleware.close());
    const app = express();
    app.use(middleware);
    app.get('/read', (req, res) => {
      res.json({ views: sess(req).views });
    });
    const after = await listen(createServer(app));
    servers.push(after);

    expect(await (await browser.fetch(`${after.url}/read`)).json()).toEqual({ views: 1 });
    // The drop-in's cookie is shoal's: <id>.<signature>.
    const id = (browser.cookie.split('=')[1] ?? '').split('.')[0] as string;
    const moved = await store.load(id, Date.now());
    expect(moved?.meta.idleMs).toBe(thirtyDays);
    expect(moved?.meta.rev).toBe(1); // given with the move, not by a second write
    expect(moved?.meta.idleDeadline).toBeGreaterThan(Date.now() + thirtyDays - 60_000);
  });
});

/** cookie-signature's MAC, as express-session signs its cookie. */
function signature(id: string, secret: string): string {
  return createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '');
}
