/**
 * The probe's routes on shoal's express-session drop-in: the express-session peer's code
 * (bench/peers/express-session-app.mjs) with its session line swapped for
 * `session()` from shoal/express-session over a shoal Redis store. Same defaults
 * (resave: false, saveUninitialized: false), same read-modify-write /incr.
 *
 * Env: SHOAL_STORE=redis://…, SHOAL_NAMESPACE, SHOAL_SECRETS. Flags: --port, --host.
 */
import type { Request } from 'express';
import { createStore } from 'shoal';
import { session } from 'shoal/express-session';
import { expressApp, listenUntilSignal } from './express-base.mjs';
import { peerArgs } from './peer-args.mjs';

const args = peerArgs();
const { node } = args;
const url = process.env.SHOAL_STORE ?? 'redis://127.0.0.1:6379';
const secrets = (process.env.SHOAL_SECRETS ?? 'drop-in-peer-development-secret-never-in-production').split(',');
const store = await createStore(url, { namespace: process.env.SHOAL_NAMESPACE ?? 'session' });
const sessions = session({ secret: secrets, store, resave: false, saveUninitialized: false });

// Names the session object owns; a route writing one of them would corrupt the session.
const RESERVED = new Set(['cookie', 'id', 'req', 'regenerate', 'destroy', 'reload', 'save', 'touch', 'resetMaxAge']);
type Loose = Record<string, unknown> & {
  regenerate(cb: (err?: unknown) => void): void;
  destroy(cb: (err?: unknown) => void): void;
};
const sess = (req: Request) => (req as unknown as { session: Loose }).session;
const attributesOf = (s: Loose) => Object.fromEntries(Object.entries(s).filter(([k]) => k !== 'cookie'));

const app = expressApp(node);
app.use(sessions);

app.post('/login', (req, res, next) => {
  const user = String(req.query.user ?? '');
  if (!user) {
    res.status(400).json({ error: 'missing ?user=<name>' });
    return;
  }
  const kept = attributesOf(sess(req));
  sess(req).regenerate((err) => {
    if (err) return next(err);
    Object.assign(sess(req), kept, { userId: user });
    res.json({ ok: true, user, node });
  });
});

app.post('/set/:key', (req, res) => {
  if (RESERVED.has(req.params.key)) {
    res.status(400).json({ error: `"${req.params.key}" is reserved by the session object` });
    return;
  }
  sess(req)[req.params.key] = typeof req.body === 'string' ? req.body : '';
  res.json({ ok: true, node });
});

app.post('/incr/:key', (req, res) => {
  const key = req.params.key;
  if (RESERVED.has(key)) {
    res.status(400).json({ error: `"${key}" is reserved by the session object` });
    return;
  }
  // The same read-modify-write as the express-session peer: one key, last writer wins.
  const value = ((sess(req)[key] as number | undefined) ?? 0) + 1;
  sess(req)[key] = value;
  res.json({ ok: true, value, node });
});

app.get('/session', (req, res) => {
  res.json({ id: (req as unknown as { sessionID: string }).sessionID, attributes: attributesOf(sess(req)), node });
});

app.post('/logout', (req, res, next) => {
  sess(req).destroy((err) => {
    if (err) return next(err);
    res.clearCookie('connect.sid', { path: '/' });
    res.json({ ok: true, node });
  });
});

listenUntilSignal(app, args, 'drop-in peer', () => sessions.close());
