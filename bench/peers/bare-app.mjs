/**
 * The probe's routes with no session at all: every route answers at once, from
 * no state. The ceiling a session layer is measured against (Express + body parser only).
 * Flags: --port, --host.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import express from 'express';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '3000' }, host: { type: 'string', default: '127.0.0.1' } },
});
const node = process.env.SHOAL_NODE_ID ?? `${hostname()}:${process.pid}`;

const app = express();
app.disable('x-powered-by');
app.set('trust proxy', 'loopback');
app.use(express.text({ type: '*/*', limit: '1mb' }));
app.use((_req, res, next) => {
  res.setHeader('X-Shoal-Node', node);
  next();
});
app.get('/healthz', (_req, res) => {
  res.json({ ok: true, node });
});

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

const server = app.listen(Number(values.port), values.host, () => {
  console.log(JSON.stringify({ msg: 'bare peer listening', port: Number(values.port), pid: process.pid }));
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
