/**
 * The probe's session routes on Fastify + shoal/fastify over a shoal Redis store: what the
 * @fastify/session peer (bench/peers/fastify-session-app.mjs) does, with shoal's plugin.
 * Defaults throughout (no client scope, metrics on, the sweeper running), as an app would run it.
 *
 * Env: SHOAL_STORE=redis://…, SHOAL_NAMESPACE, SHOAL_SECRETS. Flags: --port, --host.
 */
import Fastify from 'fastify';
import { session } from 'shoal/fastify';
import { peerArgs } from './peer-args.mjs';
import { shoalSessions } from './shoal-sessions.js';

const args = peerArgs();
const { node } = args;
const { store, sessions } = await shoalSessions('fastify-peer-development-secret-never-in-production');

const app = Fastify();
app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.addHook('onRequest', async (_request, reply) => {
  reply.header('X-Shoal-Node', node);
});
await app.register(session(sessions));

app.get('/healthz', async () => ({ ok: true, node }));

app.post('/login', async (request, reply) => {
  const user = String((request.query as { user?: string }).user ?? '');
  if (!user) return reply.code(400).send({ error: 'missing ?user=<name>' });
  await request.session.regenerate({ keepData: true });
  request.session.setUser(user);
  request.session.set('userId', user);
  return { ok: true, user, node };
});

app.post<{ Params: { key: string } }>('/set/:key', async (request) => {
  request.session.set(request.params.key, typeof request.body === 'string' ? request.body : '');
  return { ok: true, node };
});

app.get('/session', async (request) => ({
  id: request.session.id ?? undefined,
  attributes: await request.session.all(),
  node,
}));

await app.listen({ port: args.port, host: args.host });
console.log(JSON.stringify({ msg: 'fastify shoal peer listening', port: args.port, pid: process.pid }));

const stop = () => {
  void app
    .close()
    .then(() => sessions.close())
    .finally(() => void store.close().finally(() => process.exit(0)));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
