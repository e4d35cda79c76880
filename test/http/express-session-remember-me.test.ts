import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type Request } from 'express';
import { createStore, type SessionStore } from 'shoal';
import { session } from 'shoal/express-session';
import { memoryStore } from 'shoal/stores/memory';
import { afterAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { listen, type Served } from '../helpers/listen.js';

/**
 * "Remember me" in an express-session app: a per-session cookie.maxAge longer than the server's
 * idle timeout. express-session + connect-redis give such a session its cookie's lifetime (the TTL
 * of each save); the drop-in gives it that idle length server-side, and an absolute timeout at
 * least as long.
 */
const SECRET = 'remember-me-secret-0123456789abcdefghijkl';
type Loose = { cookie: { maxAge: number | null }; user?: string };
const sess = (req: Request) => (req as unknown as { session: Loose }).session;

const servers: Served[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function app(idleTimeout?: string, store: SessionStore = memoryStore()) {
  const warnings: Array<{ obj: Record<string, unknown>; msg: string | undefined }> = [];
  const logger = {
    info() {},
    error() {},
    warn(obj: object, msg?: string) {
      warnings.push({ obj: obj as Record<string, unknown>, msg });
    },
  };
  const middleware = session({
    secret: SECRET,
    store,
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 60_000 },
    logger,
    ...(idleTimeout ? { idleTimeout } : {}),
  });
  const web = express();
  web.use(middleware);
  web.post('/login', (req, res) => {
    sess(req).user = 'ann';
    const remember = req.query.remember;
    if (remember) sess(req).cookie.maxAge = remember === '1' ? 30 * 24 * 3600_000 : Number(remember);
    res.json({ ok: true });
  });
  web.get('/me', (req, res) => {
    res.json({ user: sess(req).user ?? null });
  });
  const served = await listen(createServer(web));
  servers.push(served);
  servers.push({ url: '', close: () => middleware.close() });
  /** The stored meta of the session a response's cookie names. */
  const metaOf = async (res: Response) => {
    const manager = await middleware.ready;
    const { id } = manager.idFromCookie(res.headers.getSetCookie()[0]?.split(';')[0]);
    return id === null ? null : ((await manager.load(id))?.meta ?? null);
  };
  return { served, warnings, metaOf };
}

describe('express-session drop-in: a cookie that outlives the idle timeout', () => {
  it("gives the session its cookie's lifetime on the server, and an absolute timeout at least as long", async () => {
    const { served, warnings, metaOf } = await app();
    for (const [remember, idleMs, absoluteMs] of [
      ['1', 30 * 24 * 3600_000, 30 * 24 * 3600_000],
      [String(90 * 24 * 3600_000), 90 * 24 * 3600_000, 90 * 24 * 3600_000],
      // Browsers keep a cookie 400 days at most: the session lives no longer.
      [String(1000 * 24 * 3600_000), 400 * 24 * 3600_000, 400 * 24 * 3600_000],
    ] as const) {
      const res = await new CookieJar().fetch(`${served.url}/login?remember=${remember}`, { method: 'POST' });
      expect(res.status).toBe(200);
      expect(res.headers.get('set-cookie')).toMatch(/Expires=/);
      const meta = await metaOf(res);
      expect(meta?.idleMs).toBe(idleMs);
      expect((meta?.idleDeadline ?? 0) - Date.now()).toBeGreaterThan(idleMs - 5000);
      expect((meta?.absoluteDeadline ?? 0) - (meta?.createdAt ?? 0)).toBe(absoluteMs);
    }
    expect(warnings).toEqual([]);
  });

  it('leaves the idle timeout as it is for a cookie no longer than it', async () => {
    const { served, metaOf } = await app();
    for (const path of ['/login', '/login?remember=60000', '/login?remember=30000']) {
      const meta = await metaOf(await new CookieJar().fetch(`${served.url}${path}`, { method: 'POST' }));
      expect(meta?.idleMs, path).toBeUndefined();
      expect((meta?.idleDeadline ?? 0) - Date.now(), path).toBeLessThanOrEqual(60_000);
    }
    const long = await app('30d');
    const meta = await long.metaOf(
      await new CookieJar().fetch(`${long.served.url}/login?remember=1`, { method: 'POST' }),
    );
    expect(meta?.idleMs).toBeUndefined();
  });

  it('gives a session stored without it (an earlier version, a longer idleTimeout) its lifetime on its next request, once', async () => {
    const store = memoryStore();
    const commits = { count: 0 };
    const commit = store.commit.bind(store);
    store.commit = (...args) => {
      commits.count++;
      return commit(...args);
    };
    const before = await app('30d', store);
    const now = await app(undefined, store);
    const browser = new CookieJar();
    const login = await browser.fetch(`${before.served.url}/login?remember=1`, { method: 'POST' });
    expect((await before.metaOf(login))?.idleMs).toBeUndefined();
    const written = commits.count;
    expect(await (await browser.fetch(`${now.served.url}/me`)).json()).toEqual({ user: 'ann' });
    expect(commits.count - written).toBe(1);
    expect((await now.metaOf(login))?.idleMs).toBe(30 * 24 * 3600_000);
    for (let i = 0; i < 3; i++) await browser.fetch(`${now.served.url}/me`);
    expect(commits.count - written).toBe(1);
  });
});

/**
 * "Remember me" sets only `req.session.cookie.maxAge` (no property written). express-session keeps
 * it (its store.touch() stores the cookie), so the next request and rolling's renewed cookie have
 * it. The drop-in keeps it on every store, for every node, and writes nothing for a request that
 * leaves the cookie as it was.
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-remember-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const stores = [
  { name: 'sqlite', url: `sqlite:${join(dir, 'remember.db')}`, skip: undefined },
  { name: 'redis', url: ENGINE_URLS.redis, skip: await engineSkipReason('redis') },
];
const MONTH = 30 * 24 * 3600_000;

type Full = Loose & { cookie: Record<string, unknown>; views?: number };
const full = (req: Request) => (req as unknown as { session: Full }).session;

/** One server of the app, on its own connection to the shared store; counts the store writes it makes. */
async function server(url: string, namespace: string, rolling: boolean) {
  const store = await createStore(url, { namespace });
  const writes = { count: 0 };
  const commit = store.commit.bind(store);
  store.commit = (...args) => {
    writes.count++;
    return commit(...args);
  };
  const middleware = session({
    secret: SECRET,
    store,
    resave: false,
    saveUninitialized: false,
    rolling,
    idleTimeout: '30d',
    cookie: { maxAge: 3600_000 },
  });
  const web = express();
  web.use(middleware);
  web.post('/login', (req, res) => {
    full(req).user = 'ann';
    res.json({ ok: true });
  });
  web.post('/remember', (req, res) => {
    full(req).cookie.maxAge = MONTH;
    res.json({ ok: true });
  });
  web.post('/cookie-set', (req, res) => {
    for (const [key, value] of Object.entries(req.query)) {
      full(req).cookie[key] = value === 'false' ? false : String(value);
    }
    res.json({ ok: true });
  });
  web.post('/view', (req, res) => {
    full(req).views = (full(req).views ?? 0) + 1;
    res.json({ ok: true });
  });
  web.get('/me', (req, res) => {
    const { maxAge, sameSite, httpOnly } = full(req).cookie as { maxAge: number } & Record<string, unknown>;
    res.json({ user: full(req).user ?? null, hours: Math.round(maxAge / 3600_000), sameSite, httpOnly });
  });
  const served = await listen(createServer(web));
  servers.push({
    url: '',
    close: () =>
      served
        .close()
        .then(() => middleware.close())
        .then(() => store.close()),
  });
  return { url: served.url, writes };
}

async function cluster(url: string, rolling: boolean) {
  const namespace = `remember-${randomUUID().slice(0, 8)}`;
  return [await server(url, namespace, rolling), await server(url, namespace, rolling)] as const;
}

/** Hours until the Set-Cookie's Expires, or null when the response sent no cookie. */
function cookieHours(res: Response): number | null {
  const line = res.headers.getSetCookie()[0];
  const expires = line && /Expires=([^;]+)/.exec(line)?.[1];
  return expires ? Math.round((Date.parse(expires) - Date.now()) / 3600_000) : null;
}

for (const store of stores) {
  describe.skipIf(store.skip !== undefined)(`express-session drop-in: remember me alone, ${store.name} store`, () => {
    it('is kept: another node reads it on the next request, and the next cookie sent has it', async () => {
      const [a, b] = await cluster(store.url, false);
      const browser = new CookieJar();
      expect(cookieHours(await browser.fetch(`${a.url}/login`, { method: 'POST' }))).toBe(1);
      // Not modified, so no cookie on this response: express-session sends none either.
      expect(cookieHours(await browser.fetch(`${a.url}/remember`, { method: 'POST' }))).toBeNull();
      const me = await browser.fetch(`${b.url}/me`);
      expect(await me.json()).toMatchObject({ user: 'ann', hours: 720 });
      expect(cookieHours(await browser.fetch(`${b.url}/view`, { method: 'POST' }))).toBe(720);
      expect(cookieHours(await browser.fetch(`${a.url}/view`, { method: 'POST' }))).toBe(720);
    });

    it('with rolling, every following response renews the cookie for the remembered maxAge, on any node', async () => {
      const [a, b] = await cluster(store.url, true);
      const browser = new CookieJar();
      await browser.fetch(`${a.url}/login`, { method: 'POST' });
      expect(cookieHours(await browser.fetch(`${a.url}/remember`, { method: 'POST' }))).toBe(720);
      expect(cookieHours(await browser.fetch(`${b.url}/me`))).toBe(720);
      expect(cookieHours(await browser.fetch(`${a.url}/me`))).toBe(720);
      expect(cookieHours(await browser.fetch(`${b.url}/me`))).toBe(720);
    });

    it('a cookie attribute changed alone reaches the other node', async () => {
      const [a, b] = await cluster(store.url, true);
      const browser = new CookieJar();
      await browser.fetch(`${a.url}/login`, { method: 'POST' });
      await browser.fetch(`${a.url}/cookie-set?sameSite=strict&httpOnly=false`, { method: 'POST' });
      const res = await browser.fetch(`${b.url}/me`);
      expect(await res.json()).toMatchObject({ sameSite: 'strict', httpOnly: false });
      const line = res.headers.getSetCookie()[0] ?? '';
      expect(line).toMatch(/SameSite=Strict/);
      expect(line).not.toMatch(/HttpOnly/);
    });

    it('a request that leaves the cookie as it was writes nothing to the store', async () => {
      for (const rolling of [false, true]) {
        const nodes = await cluster(store.url, rolling);
        const browser = new CookieJar();
        await browser.fetch(`${nodes[0].url}/login`, { method: 'POST' });
        await browser.fetch(`${nodes[0].url}/remember`, { method: 'POST' });
        const writes = () => nodes[0].writes.count + nodes[1].writes.count;
        const before = writes();
        for (let i = 0; i < 10; i++) await browser.fetch(`${nodes[i % 2]?.url}/me`);
        expect(writes() - before).toBe(0);
        await browser.fetch(`${nodes[1].url}/cookie-set?sameSite=strict`, { method: 'POST' });
        expect(writes() - before).toBe(1);
      }
    });
  });
}

/**
 * Two servers of one app with a short idle timeout, as a cluster behind a round-robin balancer: a
 * session whose cookie is remembered for longer outlives the idle timeout on the other server,
 * and its end is still reported once, while an ordinary session of the same age has ended.
 */
async function shortLived(url: string) {
  const namespace = `remember-short-${randomUUID().slice(0, 8)}`;
  const ends: { user: unknown; reason: string }[] = [];
  const node = async () => {
    const store = await createStore(url, { namespace });
    const middleware = session({
      secret: SECRET,
      store,
      resave: false,
      saveUninitialized: false,
      idleTimeout: '1s',
      onSessionEnd: (snapshot, { reason }) => {
        ends.push({ user: snapshot.attributes.user, reason });
      },
    });
    const web = express();
    web.use(middleware);
    web.post('/login', (req, res) => {
      full(req).user = String(req.query.user);
      if (req.query.remember) full(req).cookie.maxAge = Number(req.query.remember);
      res.json({ ok: true });
    });
    web.get('/me', (req, res) => {
      res.json({ user: full(req).user ?? null });
    });
    const served = await listen(createServer(web));
    servers.push({
      url: '',
      close: () =>
        served
          .close()
          .then(() => middleware.close())
          .then(() => store.close()),
    });
    return served.url;
  };
  return { nodes: [await node(), await node()] as const, ends };
}

for (const store of stores) {
  describe.skipIf(store.skip !== undefined)(
    `express-session drop-in: remember me on the server, ${store.name} store`,
    () => {
      it('a remembered session outlives the idle timeout on the other node; an ordinary one ends with idle-timeout', async () => {
        const { nodes, ends } = await shortLived(store.url);
        const [a, b] = nodes;
        const ann = new CookieJar();
        const bob = new CookieJar();
        const cat = new CookieJar();
        await ann.fetch(`${a}/login?user=ann&remember=60000`, { method: 'POST' });
        await bob.fetch(`${a}/login?user=bob`, { method: 'POST' });
        await cat.fetch(`${a}/login?user=cat&remember=500`, { method: 'POST' }); // shorter: the default
        await sleep(1500); // past the 1 s idle timeout
        expect(await (await ann.fetch(`${b}/me`)).json()).toEqual({ user: 'ann' });
        expect(await (await bob.fetch(`${b}/me`)).json()).toEqual({ user: null });
        await sleep(1500); // again: the read on b slid it by ann's own idle length
        expect(await (await ann.fetch(`${a}/me`)).json()).toEqual({ user: 'ann' });
        const started = Date.now();
        while (ends.length < 2 && Date.now() - started < 5000) await sleep(50);
        expect(ends.sort((x, y) => String(x.user).localeCompare(String(y.user)))).toEqual([
          { user: 'bob', reason: 'idle-timeout' },
          { user: 'cat', reason: 'idle-timeout' },
        ]);
      });
    },
  );
}

describe('express-session drop-in: idleTimeout given as text', () => {
  it("raises absoluteTimeout's default to it, as a number does", async () => {
    for (const idleTimeout of ['90d', 90 * 24 * 3600_000]) {
      const middleware = session({ secret: SECRET, store: memoryStore(), idleTimeout });
      const { config } = await middleware.ready;
      await middleware.close();
      expect(config.absoluteMs).toBe(90 * 24 * 3600_000);
    }
  });
});
