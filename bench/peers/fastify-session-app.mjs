/**
 * The probe's session routes on Fastify + @fastify/session (with @fastify/cookie) over
 * connect-redis (node-redis client): Fastify's own session plugin at its documented
 * defaults (rolling: true, so every response re-saves a loaded session), except
 * saveUninitialized: false, as in the express-session peer.
 *
 * Env: SHOAL_STORE=redis://…, SHOAL_SECRETS=…, BENCH_REDIS_PREFIX (key prefix). Flags: --port, --host.
 */
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { RedisStore } from 'connect-redis';
import Fastify from 'fastify';
import { createClient } from 'redis';
import { peerArgs } from './peer-args.mjs';

const args = peerArgs();
const { node } = args;
const url = process.env.SHOAL_STORE ?? 'redis://127.0.0.1:6379';
if (!/^rediss?:/.test(url)) throw new Error(`@fastify/session peer needs SHOAL_STORE=redis://…, got ${url}`);
const secrets = (process.env.SHOAL_SECRETS ?? 'peer-development-secret-never-use-in-production').split(',');

const client = createClient({ url });
client.on('error', (err) => console.error(JSON.stringify({ msg: 'redis error', err: String(err) })));
await client.connect();

const app = Fastify();
app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.addHook('onRequest', async (_request, reply) => {
  reply.header('X-Shoal-Node', node);
});
await app.register(fastifyCookie);
await app.register(fastifySession, {
  secret: secrets,
  store: new RedisStore({ client, prefix: process.env.BENCH_REDIS_PREFIX ?? 'sess:' }),
  saveUninitialized: false,
  cookie: { httpOnly: true, secure: false, sameSite: 'lax' },
});

const RESERVED = new Set(['cookie', 'sessionId', 'encryptedSessionId']);
// The session's data are its own enumerable string keys (its internals are symbols), less the cookie.
const attributesOf = (session) => Object.fromEntries(Object.entries(session).filter(([k]) => k !== 'cookie'));

app.get('/healthz', async () => ({ ok: true, node }));

app.post('/login', async (request, reply) => {
  const user = String(request.query.user ?? '');
  if (!user) return reply.code(400).send({ error: 'missing ?user=<name>' });
  const kept = attributesOf(request.session);
  await request.session.regenerate();
  for (const [k, v] of Object.entries(kept)) request.session.set(k, v);
  request.session.set('userId', user);
  return { ok: true, user, node };
});

app.post('/set/:key', async (request, reply) => {
  const key = request.params.key;
  if (RESERVED.has(key)) return reply.code(400).send({ error: `"${key}" is reserved by @fastify/session` });
  request.session.set(key, typeof request.body === 'string' ? request.body : '');
  return { ok: true, node };
});

app.get('/session', async (request) => ({
  id: request.session.sessionId,
  attributes: attributesOf(request.session),
  node,
}));

await app.listen({ port: args.port, host: args.host });
console.log(JSON.stringify({ msg: '@fastify/session peer listening', port: args.port, pid: process.pid }));

const stop = () => {
  void app.close().finally(() => void client.close().finally(() => process.exit(0)));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
