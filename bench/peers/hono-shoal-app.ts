/**
 * The Fastify peers' session routes on Hono (@hono/node-server) + shoal/hono over a shoal Redis
 * store, as docs/adapters.md shows it. Defaults throughout (no client scope, metrics on, the
 * sweeper running), as an app would run it.
 *
 * Env: SHOAL_STORE=redis://…, SHOAL_NAMESPACE, SHOAL_SECRETS. Flags: --port, --host.
 */
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { type SessionVariables, session } from 'shoal/hono';
import { peerArgs } from './peer-args.mjs';
import { shoalSessions } from './shoal-sessions.js';

const args = peerArgs();
const { node } = args;
const { store, sessions } = await shoalSessions('hono-peer-development-secret-never-in-production');

const app = new Hono<{ Variables: SessionVariables }>();
app.use(async (c, next) => {
  c.header('X-Shoal-Node', node);
  await next();
});
app.use(session(sessions));

app.get('/healthz', (c) => c.json({ ok: true, node }));

app.post('/login', async (c) => {
  const user = c.req.query('user') ?? '';
  if (!user) return c.json({ error: 'missing ?user=<name>' }, 400);
  const s = c.get('session');
  await s.regenerate({ keepData: true });
  s.setUser(user);
  s.set('userId', user);
  return c.json({ ok: true, user, node });
});

app.post('/set/:key', async (c) => {
  c.get('session').set(c.req.param('key'), await c.req.text());
  return c.json({ ok: true, node });
});

app.get('/session', async (c) => {
  const s = c.get('session');
  return c.json({ id: s.id ?? undefined, attributes: await s.all(), node });
});

const server = serve({ fetch: app.fetch, port: args.port, hostname: args.host }, () => {
  console.log(JSON.stringify({ msg: 'hono shoal peer listening', port: args.port, pid: process.pid }));
});

const stop = () => {
  server.close(() => {
    void sessions
      .close()
      .then(() => store.close())
      .finally(() => process.exit(0));
  });
  if ('closeAllConnections' in server) server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
