import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express, { type Request } from 'express';
import { createStore } from 'shoal';
import { session } from 'shoal/express-session';
import { memoryStore } from 'shoal/stores/memory';
import { afterAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { listen, type Served } from '../helpers/listen.js';

/**
 * "Remember me" in an express-session app: a per-session cookie.maxAge longer than the server's
 * idle timeout. express-session + connect-redis give such a session its cookie's lifetime; the
 * drop-in ends it after idleTimeout, so it says so, once, with what to set.
 */
const SECRET = 'remember-me-secret-0123456789abcdefghijkl';
type Loose = { cookie: { maxAge: number | null }; user?: string };
const sess = (req: Request) => (req as unknown as { session: Loose }).session;

const servers: Served[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function app(idleTimeout?: string) {
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
    store: memoryStore(),
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
  const served = await listen(createServer(web));
  servers.push(served);
  servers.push({ url: '', close: () => middleware.close() });
  return { served, warnings };
}

describe('express-session drop-in: a cookie that outlives the idle timeout', () => {
  it('warns once, naming both lifetimes and idleTimeout', async () => {
    const { served, warnings } = await app();
    for (let i = 0; i < 3; i++) {
      const res = await new CookieJar().fetch(`${served.url}/login?remember=1`, { method: 'POST' });
      expect(res.status).toBe(200);
      expect(res.headers.get('set-cookie')).toMatch(/Expires=/);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.obj).toEqual({ maxAge: 30 * 24 * 3600_000, idleTimeout: 60_000 });
    expect(warnings[0]?.msg).toMatch(
      /cookie\.maxAge \(2592000000 ms\) is longer than idleTimeout \(60000 ms\).*idleTimeout: '30d'/,
    );
  });

  it('suggests the idleTimeout that covers the cookie', async () => {
    for (const [ms, text] of [
      [36 * 3600_000, "'36h'"],
      [90 * 24 * 3600_000, "'90d'"],
      [61_500, "'62s'"],
    ] as const) {
      const { served, warnings } = await app();
      await new CookieJar().fetch(`${served.url}/login?remember=${ms}`, { method: 'POST' });
      expect(warnings[0]?.msg).toContain(`session({ idleTimeout: ${text}, … })`);
    }
  });

  it('says nothing when no session outlives it', async () => {
    const plain = await app();
    await new CookieJar().fetch(`${plain.served.url}/login`, { method: 'POST' });
    expect(plain.warnings).toEqual([]);
    const long = await app('30d');
    await new CookieJar().fetch(`${long.served.url}/login?remember=1`, { method: 'POST' });
    expect(long.warnings).toEqual([]);
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
