/**
 * The express-session peer's app (bench/peers/express-session-app.mjs) with its session line
 * swapped for shoal/express over a shoal Redis store: same routes in the same order, so the
 * difference from bare Express is the session layer alone. The probe (examples/probe) carries
 * more (a client scope, realtime, more routes ahead of the session middleware); this does not.
 * Defaults throughout (metrics on, the sweeper running).
 *
 * Env: SHOAL_STORE=redis://…, SHOAL_NAMESPACE, SHOAL_SECRETS, SHOAL_COOKIE_SECURE. Flags: --port, --host.
 */
import { session, sessionErrors } from 'shoal/express';
import { expressApp, listenUntilSignal } from './express-base.mjs';
import { peerArgs } from './peer-args.mjs';
import { shoalSessions } from './shoal-sessions.js';

const args = peerArgs();
const { node } = args;
const { store, sessions } = await shoalSessions('express-peer-development-secret-never-in-production');

const app = expressApp(node);
app.use(session(sessions));

app.post('/login', async (req, res) => {
  const user = String(req.query.user ?? '');
  if (!user) {
    res.status(400).json({ error: 'missing ?user=<name>' });
    return;
  }
  await req.session.regenerate({ keepData: true });
  req.session.setUser(user);
  req.session.set('userId', user);
  res.json({ ok: true, user, node });
});

app.post('/set/:key', (req, res) => {
  req.session.set(req.params.key, typeof req.body === 'string' ? req.body : '');
  res.json({ ok: true, node });
});

app.get('/session', async (req, res) => {
  res.json({ id: req.session.id ?? undefined, attributes: await req.session.all(), node });
});

app.use(sessionErrors());

listenUntilSignal(app, args, 'express shoal peer', () => sessions.close().then(() => store.close()));
