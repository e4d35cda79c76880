/**
 * The probe: a tiny Express app that cluster tests and benchmarks drive.
 * Its routes are a fixed protocol (see docs/architecture.md#probe); keep them stable.
 */
import { hostname } from 'node:os';
import express, { type Express } from 'express';
import { session, sessionErrors } from '../../src/http/express.js';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { createStore } from '../../src/stores/index.js';
import { instrumentStore } from '../../src/stores/instrument.js';

export interface Probe {
  app: Express;
  store: SessionStore;
  sessions: SessionManager;
  close(): Promise<void>;
}

const DEV_SECRET = 'probe-development-secret-never-use-in-production';

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export async function createProbe(env: NodeJS.ProcessEnv = process.env): Promise<Probe> {
  const node = env.SHOAL_NODE_ID ?? `${hostname()}:${process.pid}`;
  const store = instrumentStore(await createStore(env.SHOAL_STORE ?? 'sqlite:.shoal/shoal.db'));
  // Ends this process handled, for the cluster tests' exactly-once check.
  const ended: Array<{ id: string; reason: string; attempt: number; endedAt: number; handledAt: number }> = [];
  const endDelayMs = Number(env.SHOAL_PROBE_END_DELAY ?? 0);
  const sessions = new SessionManager({
    store,
    secrets: (env.SHOAL_SECRETS ?? DEV_SECRET).split(','),
    cookie: { secure: env.SHOAL_COOKIE_SECURE === 'true' },
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
  // A request that takes a while (drain tests need one in flight).
  app.get('/slow', async (req, res) => {
    const ms = Math.min(Number(req.query.ms ?? 1000), 10_000);
    await new Promise((r) => setTimeout(r, ms));
    res.json({ ok: true, node, ms });
  });
  app.use(session(sessions));

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

  app.use(sessionErrors());

  const close = async () => {
    await sessions.close();
    await store.close();
  };
  return { app, store, sessions, close };
}
