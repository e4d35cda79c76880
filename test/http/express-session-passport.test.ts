import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import flash from 'connect-flash';
import express, { type Request } from 'express';
import { Redis } from 'ioredis';
import passportModule from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { createStore } from 'shoal';
import { type SessionMiddleware, session } from 'shoal/express-session';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { listen, type Served } from '../helpers/listen.js';
import { deleteKeys } from '../helpers/redis-keys.js';

/**
 * passport 0.7 + passport-local and connect-flash, installed from npm and unmodified, on the
 * drop-in: three HTTP servers (each its own middleware, passport instance and Redis connection)
 * share one Redis store, and every request goes to the next server in turn, as behind a
 * round-robin balancer with no stickiness.
 */
const skip = await engineSkipReason('redis');
const SECRET = 'passport-flash-secret-0123456789abcdefghijklm';
const namespace = `drop-in-${randomUUID().slice(0, 8)}`;
const USERS = new Map([['alice', { id: 'u-alice', username: 'alice', password: 'wonderland' }]]);

type User = { id: string; username: string };
type Loose = Record<string, unknown>;
const sess = (req: Request) => (req as unknown as { session: Loose }).session;

const nodes: Array<Served & { middleware: SessionMiddleware }> = [];
let turn = 0;
const next = () => (nodes[turn++ % nodes.length] as Served).url;

async function startNode(name: string): Promise<Served & { middleware: SessionMiddleware }> {
  const passport = new passportModule.Passport();
  passport.use(
    new LocalStrategy((username, password, done) => {
      const user = USERS.get(username);
      if (!user || user.password !== password) return done(null, false, { message: 'Incorrect username or password.' });
      return done(null, { id: user.id, username: user.username });
    }),
  );
  passport.serializeUser((user, done) => done(null, (user as User).id));
  passport.deserializeUser((id: string, done) => {
    const user = [...USERS.values()].find((u) => u.id === id);
    done(null, user ? { id: user.id, username: user.username } : false);
  });

  const middleware = session({
    secret: SECRET,
    store: await createStore(ENGINE_URLS.redis, { namespace }),
    resave: false,
    saveUninitialized: false,
  });
  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(middleware);
  app.use(flash());
  app.use(passport.session());

  app.post('/cart', (req, res) => {
    sess(req).cart = String(req.query.item);
    res.json({ node: name });
  });
  app.post(
    '/login',
    passport.authenticate('local', { failureRedirect: '/login-failed', failureFlash: true, keepSessionInfo: true }),
    (_req, res) => {
      res.json({ node: name, ok: true });
    },
  );
  app.post('/login-plain', passport.authenticate('local', { failureRedirect: '/login-failed' }), (_req, res) => {
    res.json({ node: name, ok: true });
  });
  app.get('/login-failed', (req, res) => {
    res.status(401).json({ node: name, errors: req.flash('error') });
  });
  app.get('/me', (req, res) => {
    res.json({ node: name, user: (req.user as User | undefined)?.username ?? null, cart: sess(req).cart ?? null });
  });
  app.post('/logout', (req, res, next) => {
    req.logout((err) => {
      if (err) return next(err);
      res.json({ node: name, ok: true });
    });
  });
  app.post('/flash', (req, res) => {
    res.json({ node: name, count: req.flash('info', String(req.query.msg)) });
  });
  app.get('/flash', (req, res) => {
    res.json({ node: name, info: req.flash('info') });
  });
  app.post('/set/:key', (req, res) => {
    sess(req)[String(req.params.key)] = String(req.query.value);
    res.json({ node: name });
  });
  app.get('/keys', (req, res) => {
    res.json({ node: name, data: sess(req) });
  });
  const served = await listen(createServer(app));
  return { ...served, middleware };
}

const form = (body: Record<string, string>): RequestInit => ({
  method: 'POST',
  body: new URLSearchParams(body),
  redirect: 'manual',
});

describe.skipIf(skip !== undefined)(
  'passport-local and connect-flash on the drop-in, 3 nodes round-robin, Redis',
  () => {
    beforeAll(async () => {
      for (const name of ['node-1', 'node-2', 'node-3']) nodes.push(await startNode(name));
    });
    afterAll(async () => {
      await Promise.all(
        nodes.map(async (n) => {
          await n.close();
          await n.middleware.close();
        }),
      );
      const redis = new Redis(ENGINE_URLS.redis);
      for (const pattern of [`shoal:{${namespace}:*`, `shoal:${namespace}:*`]) await deleteKeys(redis, pattern);
      redis.disconnect();
    });

    it('logs in (new id, data kept with keepSessionInfo), knows req.user on every node, logs out everywhere', async () => {
      const browser = new CookieJar();
      await browser.fetch(`${next()}/cart?item=book`, { method: 'POST' });
      const anonymous = browser.cookie;
      expect(anonymous).not.toBe('');

      const login = await browser.fetch(`${next()}/login`, form({ username: 'alice', password: 'wonderland' }));
      expect(login.status).toBe(200);
      expect(browser.cookie).not.toBe(anonymous); // regenerated: a new id against session fixation

      const seen = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const me = (await (await browser.fetch(`${next()}/me`)).json()) as { node: string; user: string; cart: string };
        expect(me).toMatchObject({ user: 'alice', cart: 'book' });
        seen.add(me.node);
      }
      expect(seen.size).toBe(3);

      // The pre-login id was destroyed on rotation: replaying it reaches nothing, on any node.
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${next()}/me`, { headers: { cookie: anonymous } });
        expect(await res.json()).toMatchObject({ user: null, cart: null });
      }

      const loggedIn = browser.cookie;
      const out = await browser.fetch(`${next()}/logout`, { method: 'POST' });
      expect(out.status).toBe(200);
      for (let i = 0; i < 3; i++) {
        expect(await (await browser.fetch(`${next()}/me`)).json()).toMatchObject({ user: null });
        const replay = await fetch(`${next()}/me`, { headers: { cookie: loggedIn } });
        expect(await replay.json()).toMatchObject({ user: null });
      }
    });

    it('without keepSessionInfo, login starts from an empty session (passport 0.7 default)', async () => {
      const browser = new CookieJar();
      await browser.fetch(`${next()}/cart?item=pen`, { method: 'POST' });
      await browser.fetch(`${next()}/login-plain`, form({ username: 'alice', password: 'wonderland' }));
      expect(await (await browser.fetch(`${next()}/me`)).json()).toMatchObject({ user: 'alice', cart: null });
    });

    it('a failed login flashes its message, read once on another node', async () => {
      const browser = new CookieJar();
      const failed = await browser.fetch(`${next()}/login`, form({ username: 'alice', password: 'nope' }));
      expect(failed.status).toBe(302);
      const page = await browser.fetch(`${next()}/login-failed`);
      expect(await page.json()).toMatchObject({ errors: ['Incorrect username or password.'] });
      const again = await browser.fetch(`${next()}/login-failed`);
      expect(await again.json()).toMatchObject({ errors: [] });
    });

    it('connect-flash messages queue on one node and are consumed once on the others', async () => {
      const browser = new CookieJar();
      await browser.fetch(`${next()}/flash?msg=one`, { method: 'POST' });
      await browser.fetch(`${next()}/flash?msg=two`, { method: 'POST' });
      expect(await (await browser.fetch(`${next()}/flash`)).json()).toMatchObject({ info: ['one', 'two'] });
      expect(await (await browser.fetch(`${next()}/flash`)).json()).toMatchObject({ info: [] });
    });

    it('100 concurrent writes to distinct properties from one browser: 100 of 100 kept, every node agrees', async () => {
      const browser = new CookieJar();
      await browser.fetch(`${next()}/set/seed?value=1`, { method: 'POST' });
      const statuses = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          browser.fetch(`${next()}/set/k${i}?value=v${i}`, { method: 'POST' }).then((r) => r.status),
        ),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(100);
      for (let i = 0; i < 3; i++) {
        const { data } = (await (await browser.fetch(`${next()}/keys`)).json()) as { data: Record<string, string> };
        const kept = Array.from({ length: 100 }, (_, k) => k).filter((k) => data[`k${k}`] === `v${k}`);
        expect(kept).toHaveLength(100);
      }
    });
  },
);
