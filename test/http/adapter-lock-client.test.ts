import { createServer, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAdaptorServer } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clientOf as expressClientOf,
  session as expressSession,
  sessionErrors,
  sessionLock,
} from '../../src/http/express.js';
import { clientOf as fastifyClientOf, session as fastifySession } from '../../src/http/fastify.js';
import { sessionLock as honoLock, session as honoSession, type SessionVariables } from '../../src/http/hono.js';
import { nodeSessions } from '../../src/http/node.js';
import { defineClientScope } from '../../src/session/client-scope.js';
import { SessionManager } from '../../src/session/manager.js';
import type { Session } from '../../src/session/session.js';
import { memoryStore } from '../../src/stores/memory.js';
import { CookieJar } from '../helpers/cookie-jar.js';
import { listen, type Served } from '../helpers/listen.js';

/**
 * The per-route lock helpers and the client scope in every adapter. Each serves:
 *   POST /locked?ms=   under lock "checkout" (wait 300 ms): { fencingToken, startedAt, endedAt }
 *   POST /count        under lock "count": read n, pause, write n + 1 (a lost update without the lock)
 *   POST /inner        the handler itself calls session.lock("checkout", …, { wait: 0 })
 *   POST /client?value= / GET /client   the client scope's "theme"
 *   POST /logout       destroys the session
 */
const SECRET = 'adapter-lock-client-secret-0123456789abcdef';
const LOCK_WAIT = 300;

async function held(ms: number, fencingToken: number) {
  const startedAt = Date.now();
  await sleep(ms);
  return { fencingToken, startedAt, endedAt: Date.now() };
}

async function count(s: Session): Promise<{ n: number }> {
  const n = ((await s.get('n')) as number | undefined) ?? 0;
  await sleep(20);
  s.set('n', n + 1);
  return { n: n + 1 };
}

/** The handler's own session.lock() of "checkout", without waiting. */
async function inner(s: Session): Promise<{ ok: true }> {
  await s.lock('checkout', () => sleep(1), { wait: 0 });
  return { ok: true };
}

type Serve = (sessions: SessionManager, clients: SessionManager) => Promise<Served>;
const ms = (url: string) => Number(new URL(url, 'http://x').searchParams.get('ms') ?? 0);
const value = (url: string) => new URL(url, 'http://x').searchParams.get('value') ?? '';

const adapters: Array<{ name: string; serve: Serve }> = [
  {
    name: 'express',
    serve: (sessions, clients) => {
      const app = express();
      app.use(expressSession(sessions, { client: clients }));
      app.post('/locked', sessionLock('checkout', { wait: LOCK_WAIT }), async (req, res) => {
        res.json(await held(ms(req.originalUrl), req.sessionLock?.fencingToken ?? -1));
      });
      app.post('/count', sessionLock('count'), async (req, res) => {
        res.json(await count(req.session));
      });
      app.post('/inner', async (req, res) => {
        res.json(await inner(req.session));
      });
      app.post('/client', (req, res) => {
        expressClientOf(req, clients).set('theme', value(req.originalUrl));
        res.json({ ok: true });
      });
      app.get('/client', async (req, res) => {
        res.json({ theme: (await expressClientOf(req, clients).get('theme')) ?? null });
      });
      app.post('/logout', async (req, res) => {
        await req.session.destroy();
        res.json({ ok: true });
      });
      app.use(sessionErrors());
      return listen(createServer(app));
    },
  },
  {
    name: 'fastify',
    serve: async (sessions, clients) => {
      const app = Fastify();
      await app.register(fastifySession(sessions, { client: clients }));
      app.post('/locked', { config: { sessionLock: { name: 'checkout', wait: LOCK_WAIT } } }, (request) =>
        held(ms(request.url), request.sessionLock?.fencingToken ?? -1),
      );
      app.post('/count', { config: { sessionLock: 'count' } }, (request) => count(request.session));
      app.post('/inner', (request) => inner(request.session));
      app.post('/client', (request) => {
        fastifyClientOf(request, clients).set('theme', value(request.url));
        return { ok: true };
      });
      app.get('/client', async (request) => ({
        theme: (await fastifyClientOf(request, clients).get('theme')) ?? null,
      }));
      app.post('/logout', async (request) => {
        await request.session.destroy();
        return { ok: true };
      });
      await app.ready();
      return listen(app.server);
    },
  },
  {
    name: 'hono',
    serve: (sessions, clients) => {
      const app = new Hono<{ Variables: SessionVariables<Record<string, unknown>, Record<string, unknown>> }>();
      app.onError((err, c) => c.json({ error: String(err) }, 500)); // the default one logs every error
      app.use(honoSession(sessions, { client: clients }));
      app.post('/locked', honoLock('checkout', { wait: LOCK_WAIT }), async (c) =>
        c.json(await held(ms(c.req.url), c.get('sessionLock').fencingToken)),
      );
      app.post('/count', honoLock('count'), async (c) => c.json(await count(c.get('session'))));
      app.post('/inner', async (c) => c.json(await inner(c.get('session'))));
      app.post('/client', (c) => {
        c.get('client').set('theme', value(c.req.url));
        return c.json({ ok: true });
      });
      app.get('/client', async (c) => c.json({ theme: (await c.get('client').get('theme')) ?? null }));
      app.post('/logout', async (c) => {
        await c.get('session').destroy();
        return c.json({ ok: true });
      });
      return listen(createAdaptorServer({ fetch: app.fetch }) as Server);
    },
  },
  {
    name: 'node:http',
    serve: (sessions, clients) => {
      // Plain node:http has no routes to decorate: handlers call session.lock() themselves.
      const { handle } = nodeSessions(sessions, { client: clients });
      const json = (res: import('node:http').ServerResponse, body: unknown) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(body));
      };
      return listen(
        createServer(
          handle(async (req, res, s, client) => {
            const path = new URL(req.url ?? '/', 'http://x').pathname;
            if (path === '/locked') {
              const out = await s.lock('checkout', ({ fencingToken }) => held(ms(req.url ?? ''), fencingToken), {
                wait: LOCK_WAIT,
              });
              return json(res, out);
            }
            if (path === '/count') {
              // Commit under the lock: the next holder must read this write.
              const out = await s.lock('count', async () => {
                const r = await count(s);
                await s.commit();
                return r;
              });
              return json(res, out);
            }
            if (path === '/inner') return json(res, await inner(s));
            if (path === '/client' && req.method === 'POST') {
              client.set('theme', value(req.url ?? ''));
              return json(res, { ok: true });
            }
            if (path === '/client') return json(res, { theme: (await client.get('theme')) ?? null });
            if (path === '/logout') {
              await s.destroy();
              return json(res, { ok: true });
            }
            res.statusCode = 404;
            res.end();
          }),
        ),
      );
    },
  },
];

const managers: SessionManager[] = [];
afterAll(async () => {
  await Promise.all(managers.map((m) => m.close()));
});

describe.each(adapters)('$name: per-route session lock and client scope', ({ serve }) => {
  let served: Served;
  beforeAll(async () => {
    const base = { secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } };
    const sessions = new SessionManager({ ...base, store: memoryStore() });
    const clients = defineClientScope({ ...base, store: memoryStore() });
    managers.push(sessions, clients);
    served = await serve(sessions, clients);
    return () => served.close();
  });

  it('runs two locked requests of one session one after the other; a third that waits too long gets 409', async () => {
    const browser = new CookieJar();
    // The lock creates the session: the first response carries its cookie.
    const first = await browser.fetch(`${served.url}/locked?ms=10`, { method: 'POST' });
    expect(first.status).toBe(200);
    expect(browser.cookie).toMatch(/^shoal\.sid=/);
    const runs = await Promise.all(
      [0, 1].map(async () => {
        const res = await browser.fetch(`${served.url}/locked?ms=120`, { method: 'POST' });
        expect(res.status).toBe(200);
        return (await res.json()) as { fencingToken: number; startedAt: number; endedAt: number };
      }),
    );
    runs.sort((x, y) => x.startedAt - y.startedAt);
    const [a, b] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(b.startedAt).toBeGreaterThanOrEqual(a.endedAt);
    expect(b.fencingToken).toBeGreaterThan(a.fencingToken);

    const long = browser.fetch(`${served.url}/locked?ms=900`, { method: 'POST' });
    await sleep(100);
    const started = Date.now();
    const busy = await browser.fetch(`${served.url}/locked?ms=0`, { method: 'POST' });
    expect(busy.status).toBe(409);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect(Date.now() - started).toBeGreaterThanOrEqual(LOCK_WAIT - 20);
    expect(await busy.json()).toMatchObject({
      error: 'ERR_SHOAL_LOCK_TIMEOUT',
      message: expect.stringMatching(/session lock "checkout" is held by another request/),
    });
    expect((await long).status).toBe(200);
  });

  it('holds the lock until the commit: 8 concurrent read-modify-writes under it lose nothing', async () => {
    const browser = new CookieJar();
    await browser.fetch(`${served.url}/count`, { method: 'POST' });
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        browser.fetch(`${served.url}/count`, { method: 'POST' }).then(async (r) => (await r.json()) as { n: number }),
      ),
    );
    expect(results.map((r) => r.n).sort((x, y) => x - y)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('answers 409 JSON when a session.lock() inside a handler times out', async () => {
    const browser = new CookieJar();
    expect((await browser.fetch(`${served.url}/inner`, { method: 'POST' })).status).toBe(200);
    const holder = browser.fetch(`${served.url}/locked?ms=600`, { method: 'POST' });
    await sleep(150);
    const refused = await browser.fetch(`${served.url}/inner`, { method: 'POST' });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: 'ERR_SHOAL_LOCK_TIMEOUT' });
    expect((await holder).status).toBe(200);
    expect((await browser.fetch(`${served.url}/inner`, { method: 'POST' })).status).toBe(200);
  });

  it('keeps the client scope under its own cookie, across logout', async () => {
    const browser = new CookieJar();
    const set = await browser.fetch(`${served.url}/client?value=dark`, { method: 'POST' });
    expect(set.headers.getSetCookie()).toEqual([
      expect.stringMatching(/^shoal\.client=[\w-]+\.[\w-]+; Path=\/; Max-Age=34560000; HttpOnly; SameSite=Lax$/),
    ]);
    await browser.fetch(`${served.url}/locked?ms=0`, { method: 'POST' }); // now a session too
    expect(browser.cookie).toMatch(/shoal\.client=.*shoal\.sid=/);
    const out = await browser.fetch(`${served.url}/logout`, { method: 'POST' });
    expect(out.headers.getSetCookie()).toEqual([expect.stringMatching(/^shoal\.sid=;.*Max-Age=0/)]);
    expect(browser.cookie).not.toMatch(/shoal\.sid=/);
    expect(await (await browser.fetch(`${served.url}/client`)).json()).toEqual({ theme: 'dark' });
  });
});
