/**
 * The probe's routes with no session at all: every route answers at once, from
 * no state. The ceiling a session layer is measured against (Express + body parser only).
 * Flags: --port, --host.
 */
import { expressApp, listenUntilSignal } from './express-base.mjs';
import { peerArgs } from './peer-args.mjs';

const args = peerArgs();
const { node } = args;

const app = expressApp(node);

app.get('/', (_req, res) => {
  res.type('html').send(`<!doctype html><title>bare peer</title><p>${node}</p>`);
});

app.post('/login', (req, res) => {
  const user = String(req.query.user ?? '');
  if (!user) {
    res.status(400).json({ error: 'missing ?user=<name>' });
    return;
  }
  res.json({ ok: true, user, node });
});

app.post('/set/:key', (_req, res) => {
  res.json({ ok: true, node });
});

app.post('/incr/:key', (_req, res) => {
  res.json({ ok: true, value: 1, node });
});

app.get('/session', (_req, res) => {
  res.json({ attributes: {}, node });
});

app.post('/logout', (_req, res) => {
  res.json({ ok: true, node });
});

listenUntilSignal(app, args, 'bare peer');
