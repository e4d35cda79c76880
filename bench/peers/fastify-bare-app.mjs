/**
 * The Fastify peers' session routes with no session at all: the ceiling the Fastify session
 * layers are measured against (Fastify + a text body parser only). Flags: --port, --host.
 */
import Fastify from 'fastify';
import { peerArgs } from './peer-args.mjs';

const args = peerArgs();
const { node } = args;

const app = Fastify();
app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.addHook('onRequest', async (_request, reply) => {
  reply.header('X-Shoal-Node', node);
});

app.get('/healthz', async () => ({ ok: true, node }));
app.post('/login', async (request, reply) => {
  const user = String(request.query.user ?? '');
  if (!user) return reply.code(400).send({ error: 'missing ?user=<name>' });
  return { ok: true, user, node };
});
app.post('/set/:key', async () => ({ ok: true, node }));
app.get('/session', async () => ({ attributes: {}, node }));

await app.listen({ port: args.port, host: args.host });
console.log(JSON.stringify({ msg: 'fastify bare peer listening', port: args.port, pid: process.pid }));

const stop = () => {
  void app.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
