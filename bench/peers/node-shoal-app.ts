/**
 * The Fastify peers' session routes on plain node:http + shoal/node over a shoal Redis store,
 * through `nodeSessions(sessions).handle()` as docs/adapters.md shows it. Defaults throughout
 * (no client scope, metrics on, the sweeper running), as an app would run it.
 *
 * Env: SHOAL_STORE=redis://…, SHOAL_NAMESPACE, SHOAL_SECRETS. Flags: --port, --host.
 */
import { nodeSessions } from 'shoal/node';
import { listenUntilSignal, readText, routeOf, sendJson } from './node-base.mjs';
import { peerArgs } from './peer-args.mjs';
import { shoalSessions } from './shoal-sessions.js';

const args = peerArgs();
const { node } = args;
const { store, sessions } = await shoalSessions('node-peer-development-secret-never-in-production');

const http = nodeSessions(sessions, {
  onError: (err) => console.error(JSON.stringify({ msg: 'session error', err: String(err) })),
});

listenUntilSignal(
  http.handle(async (req, res, session) => {
    const route = routeOf(req);
    const body = await readText(req);
    if (!route) return sendJson(res, node, 404, { error: 'not found' });
    if (route.name === 'healthz') return sendJson(res, node, 200, { ok: true, node });
    if (route.name === 'login') {
      const user = route.url.searchParams.get('user') ?? '';
      if (!user) return sendJson(res, node, 400, { error: 'missing ?user=<name>' });
      await session.regenerate({ keepData: true });
      session.setUser(user);
      session.set('userId', user);
      return sendJson(res, node, 200, { ok: true, user, node });
    }
    if (route.name === 'set') {
      session.set(route.key, body);
      return sendJson(res, node, 200, { ok: true, node });
    }
    return sendJson(res, node, 200, { id: session.id ?? undefined, attributes: await session.all(), node });
  }),
  args,
  'node shoal peer',
  () => sessions.close().finally(() => store.close()),
);
