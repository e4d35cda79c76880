/**
 * The Hono peers' session routes with no session at all: the ceiling shoal/hono is measured
 * against (Hono on @hono/node-server, the text body read). Flags: --port, --host.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { peerArgs } from './peer-args.mjs';

const args = peerArgs();
const { node } = args;

const app = new Hono();
app.use(async (c, next) => {
  c.header('X-Shoal-Node', node);
  await next();
});

app.get('/healthz', (c) => c.json({ ok: true, node }));
app.post('/login', (c) => {
  const user = c.req.query('user') ?? '';
  if (!user) return c.json({ error: 'missing ?user=<name>' }, 400);
  return c.json({ ok: true, user, node });
});
// The body is read, as the shoal peer's is: the same work outside the session.
app.post('/set/:key', async (c) => {
  await c.req.text();
  return c.json({ ok: true, node });
});
app.get('/session', (c) => c.json({ attributes: {}, node }));

const server = serve({ fetch: app.fetch, port: args.port, hostname: args.host }, () => {
  console.log(JSON.stringify({ msg: 'hono bare peer listening', port: args.port, pid: process.pid }));
});

const stop = () => {
  server.close(() => process.exit(0));
  if ('closeAllConnections' in server) server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
