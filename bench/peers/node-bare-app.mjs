/**
 * The node:http peers' session routes with no session at all: the ceiling shoal/node is
 * measured against (node:http, the routing and the text body only). Flags: --port, --host.
 */
import { listenUntilSignal, readText, routeOf, sendJson } from './node-base.mjs';
import { peerArgs } from './peer-args.mjs';

const args = peerArgs();
const { node } = args;

listenUntilSignal(
  async (req, res) => {
    const route = routeOf(req);
    // The body is read on every route, as the shoal peer's is: the same work outside the session.
    await readText(req);
    if (!route) return sendJson(res, node, 404, { error: 'not found' });
    if (route.name === 'healthz') return sendJson(res, node, 200, { ok: true, node });
    if (route.name === 'login') {
      const user = route.url.searchParams.get('user') ?? '';
      if (!user) return sendJson(res, node, 400, { error: 'missing ?user=<name>' });
      return sendJson(res, node, 200, { ok: true, user, node });
    }
    if (route.name === 'set') return sendJson(res, node, 200, { ok: true, node });
    return sendJson(res, node, 200, { attributes: {}, node });
  },
  args,
  'node bare peer',
);
