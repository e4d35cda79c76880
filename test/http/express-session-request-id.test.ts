import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import express from 'express';
import { createStore } from 'shoal';
import { session } from 'shoal/express-session';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { listen, type Served } from '../helpers/listen.js';

/**
 * The drop-in keeps `req.sessionID` off Express's requests (an accessor on Express's shared request
 * prototype; a property added to each request costs it a map of its own in V8), and `req.session.id`
 * and `.req` on the session's prototype. Apps must see what express-session gives them: the id
 * everywhere the request goes, the new one after regenerate(), an id the app assigns itself, a
 * sub-app and a second app, and no `id` or `req` among the session's data. The drop-in decodes the
 * stored texts itself, so encryption at rest is checked here too.
 */
const SECRET = 'drop-in-request-id-test-secret-0123456789';
type Loose = Record<string, unknown> & { id: string; req: unknown; regenerate(cb: (err?: unknown) => void): void };
const sess = (req: express.Request) => (req as unknown as { session: Loose }).session;
const idOf = (req: express.Request) => (req as unknown as { sessionID?: string }).sessionID;

const middlewares: ReturnType<typeof session>[] = [];
let main: Served;
let second: Served;
let plainPath: Served;

function app(): express.Express {
  const a = express();
  const m = session({ secret: SECRET, resave: false, saveUninitialized: false, store: 'memory:' });
  middlewares.push(m);
  a.get('/before', (req, res) => {
    res.json({ id: idOf(req) ?? null });
  });
  a.use(m);
  a.post('/set', (req, res) => {
    sess(req).n = Number(req.query.n);
    res.json({ id: idOf(req), sameAsObject: idOf(req) === sess(req).id });
  });
  a.get('/get', (req, res) => {
    const s = sess(req);
    res.json({
      id: idOf(req),
      objectId: s.id,
      reqIsRequest: s.req === req,
      keys: Object.keys(s),
      json: JSON.parse(JSON.stringify(s)) as Record<string, unknown>,
      ownId: Object.hasOwn(req, 'sessionID'),
    });
  });
  a.post('/regenerate', (req, res, next) => {
    const before = idOf(req);
    sess(req).regenerate((err) => {
      if (err) return next(err);
      sess(req).n = 1;
      res.json({ before, after: idOf(req), objectId: sess(req).id });
    });
  });
  a.get('/assign', (req, res) => {
    (req as unknown as { sessionID: string }).sessionID = 'assigned-by-the-app';
    res.json({ id: idOf(req), own: Object.hasOwn(req, 'sessionID') });
  });
  const sub = express();
  sub.get('/id', (req, res) => {
    res.json({ id: idOf(req), objectId: sess(req).id });
  });
  a.use('/sub', sub);
  return a;
}

beforeAll(async () => {
  main = await listen(createServer(app()));
  second = await listen(createServer(app()));
  // A cookie path other than '/': requests outside it get no session, as with express-session.
  const scoped = express();
  const m = session({ secret: SECRET, store: 'memory:', cookie: { path: '/app' }, saveUninitialized: false });
  middlewares.push(m);
  scoped.use(m);
  scoped.use((req: express.Request, res: express.Response) => {
    res.json({ id: idOf(req) ?? null, session: sess(req) ? 'some' : 'none' });
  });
  plainPath = await listen(createServer(scoped));
});

afterAll(async () => {
  await Promise.all([main?.close(), second?.close(), plainPath?.close()]);
  await Promise.all(middlewares.map((m) => m.close()));
});

describe('req.sessionID and req.session.id on Express', () => {
  it('is the session id in the route, in a sub-app, and on the next request', async () => {
    const jar = new CookieJar();
    const set = (await (await jar.fetch(`${main.url}/set?n=4`, { method: 'POST' })).json()) as Record<string, unknown>;
    expect(set.sameAsObject).toBe(true);
    expect(typeof set.id).toBe('string');
    const got = (await (await jar.fetch(`${main.url}/get`)).json()) as Record<string, unknown>;
    expect(got.id).toBe(set.id);
    expect(got.objectId).toBe(set.id);
    expect(got.reqIsRequest).toBe(true);
    expect(got.ownId).toBe(false);
    // Data only: neither the id nor the request is taken for a property of the session.
    expect(got.keys).toEqual(['cookie', 'n']);
    expect(Object.keys(got.json as object).sort()).toEqual(['cookie', 'n']);
    const sub = (await (await jar.fetch(`${main.url}/sub/id`)).json()) as Record<string, unknown>;
    expect(sub).toEqual({ id: set.id, objectId: set.id });
  });

  it('is the new id after regenerate(), on the request and the session object', async () => {
    const jar = new CookieJar();
    await jar.fetch(`${main.url}/set?n=1`, { method: 'POST' });
    const r = (await (await jar.fetch(`${main.url}/regenerate`, { method: 'POST' })).json()) as Record<string, unknown>;
    expect(r.after).not.toBe(r.before);
    expect(r.objectId).toBe(r.after);
    const got = (await (await jar.fetch(`${main.url}/get`)).json()) as Record<string, unknown>;
    expect(got.id).toBe(r.after);
  });

  it('keeps an id the app assigns, and gives none before the middleware or in another app', async () => {
    const jar = new CookieJar();
    expect(await (await jar.fetch(`${main.url}/assign`)).json()).toEqual({ id: 'assigned-by-the-app', own: true });
    expect(await (await jar.fetch(`${main.url}/before`)).json()).toEqual({ id: null });
    const other = new CookieJar();
    const set = (await (await other.fetch(`${second.url}/set?n=2`, { method: 'POST' })).json()) as { id: string };
    const got = (await (await other.fetch(`${second.url}/get`)).json()) as { id: string };
    expect(got.id).toBe(set.id);
  });

  it('gives a session inside the cookie path only', async () => {
    expect(await (await fetch(`${plainPath.url}/app/x`)).json()).toMatchObject({ session: 'some' });
    expect(await (await fetch(`${plainPath.url}/other`)).json()).toEqual({ id: null, session: 'none' });
  });
});

describe('the drop-in with encryption at rest', () => {
  it('stores no plaintext, and reads every property back as written, a nested change included', async () => {
    const store = await createStore('memory:');
    const m = session({
      secret: SECRET,
      store,
      resave: false,
      saveUninitialized: false,
      encryption: { keys: [randomBytes(32).toString('base64')] },
    });
    middlewares.push(m);
    const a = express();
    a.use(express.json());
    a.use(m);
    a.post('/put', (req, res) => {
      Object.assign(sess(req), req.body as object);
      res.json({ id: idOf(req) });
    });
    a.post('/push', (req, res) => {
      (sess(req).cart as { items: string[] }).items.push('card-secret-2');
      res.json({ ok: true });
    });
    a.get('/all', (req, res) => {
      const { cookie: _cookie, ...data } = sess(req);
      res.json(data);
    });
    const served = await listen(createServer(a));
    try {
      const jar = new CookieJar();
      const put = await jar.fetch(`${served.url}/put`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ card: 'card-secret-1', cart: { items: ['a'] }, n: 1 }),
      });
      const { id } = (await put.json()) as { id: string };
      await jar.fetch(`${served.url}/push`, { method: 'POST' });
      expect(await (await jar.fetch(`${served.url}/all`)).json()).toEqual({
        card: 'card-secret-1',
        cart: { items: ['a', 'card-secret-2'] },
        n: 1,
      });
      const raw = await store.load(id, Date.now());
      expect(Object.keys(raw?.attributes ?? {}).sort()).toEqual(['card', 'cart', 'cookie', 'n']);
      for (const text of Object.values(raw?.attributes ?? {})) expect(text).not.toMatch(/secret|items/);
    } finally {
      await served.close();
    }
  });
});
