/**
 * The probe: a tiny Express app that cluster tests and benchmarks drive.
 * Its routes are a fixed protocol (see docs/architecture.md#probe); keep them stable.
 */
import { hostname } from 'node:os';
import express, { type ErrorRequestHandler, type Express } from 'express';
import type { Bus } from '../../src/bus/contract.js';
import { createBus } from '../../src/bus/index.js';
import type { GatewaySessionOptions } from '../../src/cli/app-module.js';
import { ShoalError } from '../../src/core/errors.js';
import { clientOf, session, sessionErrors } from '../../src/http/express.js';
import { busUrlFromEnv, createRealtime, type Realtime } from '../../src/realtime/realtime.js';
import { defineClientScope } from '../../src/session/client-scope.js';
import { encryptionKeysFromEnv } from '../../src/session/encryption.js';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { createStore } from '../../src/stores/index.js';
import { instrumentStore } from '../../src/stores/instrument.js';

export interface Probe {
  app: Express;
  store: SessionStore;
  sessions: SessionManager;
  /** The client scope (long-lived per-browser data), in its own store namespace. */
  clients: SessionManager;
  bus: Bus;
  realtime: Realtime;
  close(): Promise<void>;
}

const DEV_SECRET = 'probe-development-secret-never-use-in-production';

/** Cookie and secrets as the probe's web nodes use them; its gateways must read the same cookie. */
export function probeSessionOptions(env: NodeJS.ProcessEnv): GatewaySessionOptions {
  return {
    secrets: (env.SHOAL_SECRETS ?? DEV_SECRET).split(','),
    cookie: { secure: env.SHOAL_COOKIE_SECURE === 'true' },
  };
}

/** Encryption at rest (SHOAL_ENCRYPTION_KEYS) and the size budget (SHOAL_MAX_SIZE), for both scopes. */
function probeDataOptions(env: NodeJS.ProcessEnv): { encryption: { keys: string[] } | false; maxSize?: number } {
  const keys = encryptionKeysFromEnv(env.SHOAL_ENCRYPTION_KEYS);
  return {
    encryption: keys ? { keys } : false,
    ...(env.SHOAL_MAX_SIZE ? { maxSize: Number(env.SHOAL_MAX_SIZE) } : {}),
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export async function createProbe(env: NodeJS.ProcessEnv = process.env): Promise<Probe> {
  const node = env.SHOAL_NODE_ID ?? `${hostname()}:${process.pid}`;
  const url = env.SHOAL_STORE ?? 'sqlite:.shoal/shoal.db';
  // SHOAL_NAMESPACE lets a test run keep its keys apart (and clean them up) on a shared backend.
  const namespace = env.SHOAL_NAMESPACE ?? 'session';
  const store = instrumentStore(await createStore(url, { namespace }));
  const clientStore = await createStore(url, { namespace: env.SHOAL_NAMESPACE ? `${namespace}-client` : 'client' });
  const lockWait = env.SHOAL_LOCK_WAIT ?? '5s';
  const bus = await createBus(busUrlFromEnv(env));
  // Ends this process handled, for the cluster tests' exactly-once check.
  const ended: Array<{ id: string; reason: string; attempt: number; endedAt: number; handledAt: number }> = [];
  const endDelayMs = Number(env.SHOAL_PROBE_END_DELAY ?? 0);
  const sessions = new SessionManager({
    store,
    ...probeSessionOptions(env),
    ...probeDataOptions(env),
    nodeId: node,
    ...(store.capabilities.lifecycle
      ? {
          onSessionEnd: async (snapshot, { reason, attempt }) => {
            // A slow handler lets tests kill a process while it holds claims.
            if (endDelayMs) await new Promise((r) => setTimeout(r, endDelayMs));
            ended.push({ id: snapshot.id, reason, attempt, endedAt: snapshot.endedAt, handledAt: Date.now() });
          },
        }
      : {}),
  });

  // Logout, rotation and expiry close the session's sockets on every gateway.
  const realtime = createRealtime({ bus, sessions });

  const clients = defineClientScope({
    store: clientStore,
    ...probeSessionOptions(env),
    ...probeDataOptions(env),
    nodeId: node,
  });

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
        const target = realtime.publisher.to(channel);
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

  const close = async () => {
    await realtime.close();
    await Promise.all([sessions.close(), clients.close()]);
    await Promise.allSettled([bus.close(), store.close(), clientStore.close()]);
  };
  return { app, store, sessions, clients, bus, realtime, close };
}
