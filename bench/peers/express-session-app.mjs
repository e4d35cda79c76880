/**
 * The probe's routes on express-session + connect-redis (v9, node-redis client):
 * the setup most Express apps run today, kept at its documented defaults
 * (resave: false, saveUninitialized: false, touch on read) so the comparison is fair.
 * Plain .mjs: @types/express-session's `req.session` would clash with shoal's.
 *
 * Env: SHOAL_STORE=redis://…, SHOAL_SECRETS=…, BENCH_REDIS_PREFIX (connect-redis key prefix).
 * Flags: --port, --host.
 */
import { RedisStore } from 'connect-redis';
import expressSession from 'express-session';
import { createClient } from 'redis';
import { expressApp, listenUntilSignal } from './express-base.mjs';
import { peerArgs } from './peer-args.mjs';

const args = peerArgs();
const { node } = args;
const url = process.env.SHOAL_STORE ?? 'redis://127.0.0.1:6379';
if (!/^rediss?:/.test(url)) throw new Error(`express-session peer needs SHOAL_STORE=redis://…, got ${url}`);
const secrets = (process.env.SHOAL_SECRETS ?? 'peer-development-secret-never-use-in-production').split(',');

const client = createClient({ url });
client.on('error', (err) => console.error(JSON.stringify({ msg: 'redis error', err: String(err) })));
await client.connect();

// Names express-session owns on req.session; a route writing one of them would corrupt the session.
const RESERVED = new Set(['cookie', 'id', 'req', 'regenerate', 'destroy', 'reload', 'save', 'touch', 'resetMaxAge']);

const app = expressApp(node);
app.use(
  expressSession({
    store: new RedisStore({ client, prefix: process.env.BENCH_REDIS_PREFIX ?? 'sess:' }),
    secret: secrets,
    resave: false,
    saveUninitialized: false,
    cookie: { httpOnly: true, secure: false, sameSite: 'lax' },
  }),
);

const attributesOf = (session) => Object.fromEntries(Object.entries(session).filter(([k]) => k !== 'cookie'));

app.get('/', (req, res) => {
  req.session.visits = (req.session.visits ?? 0) + 1;
  res.type('html').send(`<!doctype html><title>express-session peer</title><p>${node}: ${req.session.visits}</p>`);
});

app.post('/login', (req, res, next) => {
  const user = String(req.query.user ?? '');
  if (!user) {
    res.status(400).json({ error: 'missing ?user=<name>' });
    return;
  }
  // Same contract as shoal's regenerate({ keepData: true }): new id, data carried over.
  const kept = attributesOf(req.session);
  req.session.regenerate((err) => {
    if (err) return next(err);
    Object.assign(req.session, kept, { userId: user });
    res.json({ ok: true, user, node });
  });
});

app.post('/set/:key', (req, res) => {
  if (RESERVED.has(req.params.key)) {
    res.status(400).json({ error: `"${req.params.key}" is reserved by express-session` });
    return;
  }
  req.session[req.params.key] = typeof req.body === 'string' ? req.body : '';
  res.json({ ok: true, node });
});

app.post('/incr/:key', (req, res) => {
  const key = req.params.key;
  if (RESERVED.has(key)) {
    res.status(400).json({ error: `"${key}" is reserved by express-session` });
    return;
  }
  // The usual read-modify-write: what a concurrent request wrote meanwhile is overwritten.
  const value = (req.session[key] ?? 0) + 1;
  req.session[key] = value;
  res.json({ ok: true, value, node });
});

app.get('/session', (req, res) => {
  res.json({ id: req.sessionID, attributes: attributesOf(req.session), node });
});

app.post('/logout', (req, res, next) => {
  req.session.destroy((err) => {
    if (err) return next(err);
    res.clearCookie('connect.sid', { path: '/' });
    res.json({ ok: true, node });
  });
});

listenUntilSignal(app, args, 'express-session peer', () => client.close());
