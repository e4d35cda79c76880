/**
 * The probe: a tiny Express app that cluster tests and benchmarks drive.
 * Its routes are a fixed protocol (see docs/architecture.md#probe); keep them stable.
 */
import express, { type ErrorRequestHandler, type Express } from 'express';
import { ConfigError, ShoalError, type WebContext } from 'shoal';
import { clientOf, session, sessionErrors } from 'shoal/express';

/** One session end as `GET /_probe/ended` lists it: what onSessionEnd was given, and when it ran. */
export interface Ended {
  id: string;
  reason: string;
  attempt: number;
  /** The snapshot's user and attributes: the session as it was when it ended. */
  userId: string | null;
  attributes: Record<string, unknown>;
  /** The snapshot's `endedAt`: the deadline that passed, or when the session was destroyed. */
  endedAt: number;
  handledAt: number;
}

/** Sessions this process saw end (onSessionEnd ran here), for the cluster tests' exactly-once check. */
export const ended: Ended[] = [];

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function createProbe({ nodeId: node, env, sessions, clients, realtime }: WebContext): Express {
  if (!clients) throw new ConfigError('the probe needs the client scope: defineApp({ client: true })');
  const lockWait = env.SHOAL_LOCK_WAIT ?? '5s';

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
  app.get('/_probe/ended', (_req, res) => {
    res.json(ended);
  });
  app.get('/_probe/stats', (_req, res) => {
    res.json({ node, stats: sessions.stats });
  });
  // A request that takes a while (drain tests need one in flight).
  app.get('/slow', async (req, res) => {
    const ms = Math.min(Number(req.query.ms ?? 1000), 10_000);
    await new Promise((r) => setTimeout(r, ms));
    res.json({ ok: true, node, ms });
  });
  // Publishes {channel, event, data} — or an array of them, in order — to the gateways' clients
  // (cluster tests and benchmarks drive it; arrays let them publish thousands without thousands of requests).
  app.post('/_probe/publish', async (req, res) => {
    let body: unknown;
    try {
      body = JSON.parse(typeof req.body === 'string' ? req.body : '');
    } catch {
      res
        .status(400)
        .json({ error: 'body must be JSON: {"channel": "...", "event": "...", "data": …} or an array of them' });
      return;
    }
    const items = (Array.isArray(body) ? body : [body]) as Array<{
      channel?: unknown;
      event?: unknown;
      data?: unknown;
    }>;
    if (items.length === 0 || items.length > 1000) {
      res.status(400).json({ error: 'publish 1 to 1000 messages per request' });
      return;
    }
    const sends: Array<() => Promise<{ channel: string; epoch: string; offset: number }>> = [];
    for (const item of items) {
      const { channel, event, data } = item ?? {};
      if (typeof channel !== 'string' || typeof event !== 'string' || !event || event.startsWith('shoal:')) {
        res.status(400).json({ error: 'channel and event must be non-empty strings; "shoal:" events are reserved' });
        return;
      }
      try {
        const target = realtime.to(channel);
        sends.push(() => target.send(event, data));
      } catch (err) {
        res.status(400).json({ error: (err as Error).message });
        return;
      }
    }
    const results = [];
    for (const send of sends) {
      const m = await send();
      results.push({ channel: m.channel, epoch: m.epoch, offset: m.offset });
    }
    res.json(Array.isArray(body) ? { results, node } : { ...results[0], node });
  });
  app.use(session(sessions, { client: clients }));

  // A human-readable view of the same protocol, for `npm start` until the demo app takes over.
  app.get('/', async (req, res) => {
    const visits = await req.session.increment('visits');
    res.type('html').send(`<!doctype html><meta charset="utf-8"><title>shoal probe</title>
<h1>shoal probe</h1><p>This page was served by <b>${escapeHtml(node)}</b>.
Reload: the balancer sends each request to the next node, and your session follows.</p>
<p>Visits counted in your session: <b>${visits}</b></p>`);
  });

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

  app.post('/incr/:key', async (req, res) => {
    const value = await req.session.increment(req.params.key, 1);
    res.json({ ok: true, value, node });
  });

  app.get('/session', async (req, res) => {
    const attributes = await req.session.all();
    res.json({ id: req.session.id ?? undefined, attributes, node });
  });

  // Holds session.lock(name) for ?ms= milliseconds: cluster tests show requests serialise across nodes.
  // ?wait= overrides SHOAL_LOCK_WAIT; ?fail=1 throws inside the lock (it must still be released).
  app.post('/locked/:name', async (req, res) => {
    const ms = Math.min(Number(req.query.ms ?? 0) || 0, 30_000);
    const wait = typeof req.query.wait === 'string' ? Number(req.query.wait) : lockWait;
    const out = await req.session.lock(
      req.params.name,
      async ({ fencingToken }) => {
        const startedAt = Date.now();
        await new Promise((r) => setTimeout(r, ms));
        if (req.query.fail === '1') throw new Error('probe: failing inside the lock, as asked');
        return { fencingToken, startedAt, endedAt: Date.now() };
      },
      { wait },
    );
    res.json({ ...out, node });
  });

  app.post('/client/:key', (req, res) => {
    clientOf(req, clients).set(req.params.key, typeof req.body === 'string' ? req.body : '');
    res.json({ ok: true, node });
  });

  app.post('/client-incr/:key', async (req, res) => {
    res.json({ ok: true, value: await clientOf(req, clients).increment(req.params.key), node });
  });

  app.get('/client', async (req, res) => {
    const client = clientOf(req, clients);
    const attributes = await client.all();
    res.json({ id: client.id ?? undefined, attributes, node });
  });

  app.post('/logout', async (req, res) => {
    await req.session.destroy();
    res.json({ ok: true, node });
  });

  app.post('/logout-all', async (req, res) => {
    const user = await req.session.userId();
    if (!user) {
      res.status(401).json({ error: 'not logged in' });
      return;
    }
    const ended = await sessions.destroyAllForUser(user, { except: req.session.id });
    res.json({ ok: true, ended, node });
  });

  app.get('/sessions', async (req, res) => {
    const user = await req.session.userId();
    if (!user) {
      res.status(401).json({ error: 'not logged in' });
      return;
    }
    res.json({ current: req.session.id, sessions: await sessions.listSessions(user), node });
  });

  app.use(sessionErrors()); // store down → 503, LockTimeoutError → 409
  // Other shoal errors (a value over maxSize, one that fails to decrypt…) as JSON the tests can read.
  const shoalErrors: ErrorRequestHandler = (err, _req, res, next) => {
    if (!(err instanceof ShoalError)) return next(err);
    res.status(500).json({ error: err.code, name: err.name, message: err.message, node });
  };
  app.use(shoalErrors);

  return app;
}
