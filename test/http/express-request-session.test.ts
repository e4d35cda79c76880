import { createServer } from 'node:http';
import express from 'express';
import { createStore, defineSession, type SessionManager } from 'shoal';
import { session, sessionErrors } from 'shoal/express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { listen, type Served } from '../helpers/listen.js';

/**
 * On Express, req.session is not a property of the request itself but an accessor Express's shared
 * request prototype is given (a property added to each request costs that request a map of its own
 * in V8). Everything an app does with req.session must work as with a plain property: in a sub-app,
 * after the response, assigned over by the app, in an app without the middleware, and in a second
 * app of the same process.
 */
const SECRET = 'request-session-test-secret-0123456789abcdef';
let sessions: SessionManager;
let main: Served;
let other: Served;
/** What handlers saw after their response went out, by request tag. */
const late = new Map<string, unknown>();

function waitFor<T>(read: () => T | undefined, ms = 3000): Promise<T> {
  const until = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const poll = () => {
      const value = read();
      if (value !== undefined) resolve(value);
      else if (Date.now() > until) reject(new Error('timed out'));
      else setTimeout(poll, 10);
    };
    poll();
  });
}

beforeAll(async () => {
  const store = await createStore('memory:');
  sessions = defineSession({ store, secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } });

  const app = express();
  // Mounted before the session: its requests have none.
  app.get('/before', (req, res) => {
    res.json({ session: req.session === undefined ? 'none' : 'some' });
  });
  app.use(session(sessions));
  app.post('/set', (req, res) => {
    req.session.set('n', Number(req.query.n));
    res.json({ ok: true });
  });
  app.get('/get', async (req, res) => {
    res.json({ n: (await req.session.get('n')) ?? null, own: Object.hasOwn(req, 'session'), in: 'session' in req });
  });
  // After the response: the same session, and one started then is stored with the client's summary.
  app.post('/after', (req, res) => {
    const tag = String(req.query.tag);
    req.session.setUser(`late-${tag}`);
    res.json({ ok: true });
    res.on('finish', () => {
      void (async () => {
        await req.session.regenerate({ keepData: true });
        late.set(tag, { id: req.session.id, n: await req.session.get('n') });
      })();
    });
  });
  // An app that puts something else there: its own property, as without shoal.
  app.get('/assign', (req, res) => {
    (req as unknown as { session: unknown }).session = { mine: true };
    res.json({ session: req.session, own: Object.hasOwn(req, 'session') });
  });
  const sub = express();
  sub.get('/get', async (req, res) => {
    res.json({ n: (await req.session.get('n')) ?? null });
  });
  app.use('/sub', sub);
  app.use(sessionErrors());
  main = await listen(createServer(app));

  // A second app in the process, without the middleware: the accessor answers nothing there.
  const plain = express();
  plain.get('/', (req, res) => {
    res.json({ session: req.session === undefined ? 'none' : 'some' });
  });
  other = await listen(createServer(plain));
});

afterAll(async () => {
  await main?.close();
  await other?.close();
  await sessions?.close();
});

describe('req.session on Express', () => {
  it('reads what the last request wrote, in the app and in a mounted sub-app', async () => {
    const jar = new CookieJar();
    await jar.fetch(`${main.url}/set?n=7`, { method: 'POST' });
    const got = await (await jar.fetch(`${main.url}/get`)).json();
    expect(got).toEqual({ n: 7, own: false, in: true });
    expect(await (await jar.fetch(`${main.url}/sub/get`)).json()).toEqual({ n: 7 });
  });

  it('is undefined on requests the middleware did not see, in this app and in another', async () => {
    expect(await (await fetch(`${main.url}/before`)).json()).toEqual({ session: 'none' });
    expect(await (await fetch(`${other.url}/`)).json()).toEqual({ session: 'none' });
  });

  it('can be assigned over by the app, for that request only', async () => {
    expect(await (await fetch(`${main.url}/assign`)).json()).toEqual({ session: { mine: true }, own: true });
    const jar = new CookieJar();
    await jar.fetch(`${main.url}/set?n=3`, { method: 'POST' });
    expect(await (await jar.fetch(`${main.url}/get`)).json()).toMatchObject({ n: 3, own: false });
  });

  it('still serves the request after its response, and a session rotated then keeps the client summary', async () => {
    const jar = new CookieJar();
    await jar.fetch(`${main.url}/set?n=11`, { method: 'POST' });
    await jar.fetch(`${main.url}/after?tag=a`, { method: 'POST', headers: { 'user-agent': 'LateAgent/1.0' } });
    const seen = (await waitFor(() => late.get('a'))) as { id: string; n: number };
    expect(seen.n).toBe(11);
    const [listed] = await sessions.listSessions('late-a');
    expect(listed?.id).toBe(seen.id);
    expect(listed?.client).toMatch(/^LateAgent\/1\.0 · (::ffff:)?127\.0\.0\.1$/);
  });
});
