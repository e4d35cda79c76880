import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import express, { type Request } from 'express';
import { createStore, SessionManager } from 'shoal';
import { type SessionMiddleware, session } from 'shoal/express-session';
import { afterAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { listen, type Served } from '../helpers/listen.js';

/**
 * The drop-in's promise on every shared store: three servers, one browser, concurrent requests
 * each writing its own property with plain `req.session[key] = value`: every write is kept.
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-drop-in-'));
const SECRET = 'every-store-secret-0123456789abcdefghijklmnop';
const N = 40;

const stores = [
  { name: 'sqlite', url: `sqlite:${join(dir, 'drop-in.db')}`, skip: undefined },
  { name: 'redis', url: ENGINE_URLS.redis, skip: await engineSkipReason('redis') },
  { name: 'postgres', url: ENGINE_URLS.postgres, skip: await engineSkipReason('postgres') },
  { name: 'memcached', url: ENGINE_URLS.memcached, skip: await engineSkipReason('memcached') },
];

const running: Array<Served & { middleware: SessionMiddleware }> = [];
afterAll(async () => {
  for (const n of running) {
    await n.close();
    await n.middleware.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

type Sess = Record<string, unknown> & {
  regenerate(cb: (err?: unknown) => void): void;
  destroy(cb: (err?: unknown) => void): void;
};
const sess = (req: Request) => (req as unknown as { session: Sess }).session;

async function node(url: string, namespace: string, extra: Partial<Parameters<typeof session>[0]> = {}) {
  const middleware = session({
    secret: SECRET,
    store: await createStore(url, { namespace }),
    resave: false,
    saveUninitialized: false,
    ...extra,
  });
  const app = express();
  app.use(middleware);
  app.get('/id', (req, res) => {
    res.json({ id: (req as unknown as { sessionID: string }).sessionID });
  });
  // Login as express-session apps do it: regenerate (against fixation), then write the user.
  app.post('/login', (req, res, next) => {
    sess(req).regenerate((err) => {
      if (err) return next(err);
      sess(req).user = req.query.user;
      res.json({ ok: true });
    });
  });
  app.post('/logout', (req, res, next) => {
    sess(req).destroy((err) => (err ? next(err) : res.json({ ok: true })));
  });
  // passport 0.6+'s logout: regenerate (against fixation), then the app destroys the session.
  app.post('/logout-regenerated', (req, res, next) => {
    sess(req).regenerate((err) => {
      if (err) return next(err);
      sess(req).destroy((e) => (e ? next(e) : res.json({ ok: true })));
    });
  });
  app.post('/set/:key', (req: Request, res) => {
    (req as unknown as { session: Record<string, unknown> }).session[String(req.params.key)] = req.query.value;
    res.json({ ok: true });
  });
  app.get('/data', (req, res) => {
    res.json((req as unknown as { session: Record<string, unknown> }).session);
  });
  const served = { ...(await listen(createServer(app))), middleware };
  running.push(served);
  return served;
}

for (const store of stores) {
  describe.skipIf(store.skip !== undefined)(`drop-in, 3 nodes, ${store.name} store`, () => {
    it(`keeps ${N} of ${N} concurrent writes to distinct properties`, async () => {
      const namespace = `drop-in-${randomUUID().slice(0, 8)}`;
      const nodes = [
        await node(store.url, namespace),
        await node(store.url, namespace),
        await node(store.url, namespace),
      ];
      const browser = new CookieJar();
      await browser.fetch(`${nodes[0]?.url}/set/seed?value=1`, { method: 'POST' });
      const statuses = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          browser.fetch(`${nodes[i % 3]?.url}/set/k${i}?value=v${i}`, { method: 'POST' }).then((r) => r.status),
        ),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(N);
      for (const n of nodes) {
        const data = (await (await browser.fetch(`${n.url}/data`)).json()) as Record<string, unknown>;
        const kept = Array.from({ length: N }, (_, i) => i).filter((i) => data[`k${i}`] === `v${i}`);
        expect(kept).toHaveLength(N);
        expect(data.seed).toBe('1');
      }
    });

    it.skipIf(store.name === 'memcached')(
      'regenerate at login: one end for the session under its new id (logout or idle timeout), none for the old id',
      async () => {
        const namespace = `drop-in-${randomUUID().slice(0, 8)}`;
        const ends: Array<{ id: string; reason: string; user: unknown }> = [];
        const options = {
          idleTimeout: 1500,
          onSessionEnd: (
            snapshot: { id: string; attributes: Record<string, unknown> },
            { reason }: { reason: string },
          ) => {
            ends.push({ id: snapshot.id, reason, user: snapshot.attributes.user });
          },
        };
        const nodes = [await node(store.url, namespace, options), await node(store.url, namespace, options)];
        const idOf = async (browser: CookieJar, n: number) =>
          ((await (await browser.fetch(`${nodes[n]?.url}/id`)).json()) as { id: string }).id;
        const browse = async (user: string, logout: boolean) => {
          const browser = new CookieJar();
          await browser.fetch(`${nodes[0]?.url}/set/cart?value=x`, { method: 'POST' });
          const oldId = await idOf(browser, 1);
          await browser.fetch(`${nodes[1]?.url}/login?user=${user}`, { method: 'POST' });
          const newId = await idOf(browser, 0);
          if (logout) await browser.fetch(`${nodes[0]?.url}/logout`, { method: 'POST' });
          return { oldId, newId };
        };
        const alice = await browse('alice', true);
        const bob = await browse('bob', false);
        const carolOut = await (async () => {
          const browser = new CookieJar();
          await browser.fetch(`${nodes[0]?.url}/set/cart?value=x`, { method: 'POST' });
          await browser.fetch(`${nodes[1]?.url}/login?user=carol`, { method: 'POST' });
          const id = await idOf(browser, 0);
          const res = await browser.fetch(`${nodes[1]?.url}/logout-regenerated`, { method: 'POST' });
          expect(res.status).toBe(200);
          return id;
        })();
        expect(new Set([alice.oldId, alice.newId, bob.oldId, bob.newId]).size).toBe(4);
        const ids = new Set([alice.oldId, alice.newId, bob.oldId, bob.newId]);
        const mine = () => ends.filter((e) => ids.has(e.id));
        const deadline = Date.now() + 8000;
        while (Date.now() < deadline && !mine().some((e) => e.id === bob.newId)) await sleep(100);
        await sleep(750); // three more sweeps on each node: a second end would show up by now
        expect(mine().sort((x, y) => String(x.user).localeCompare(String(y.user)))).toEqual([
          { id: alice.newId, reason: 'destroyed', user: 'alice' },
          { id: bob.newId, reason: 'idle-timeout', user: 'bob' },
        ]);
        // Logout by regenerate-then-destroy ends the visit once, under the id regenerate gave it
        // (whose data regenerate had emptied); never under the id it had while logged in.
        expect(ends.filter((e) => e.id === carolOut)).toEqual([]);
        const others = ends.filter((e) => !ids.has(e.id));
        expect(others.map((e) => [e.reason, e.user])).toEqual([['destroyed', undefined]]);
      },
    );

    it.skipIf(store.name === 'memcached')(
      'beside a manager without onSessionEnd on the same store (the runtime under shoal start), every end reaches the drop-in',
      async () => {
        const namespace = `drop-in-${randomUUID().slice(0, 8)}`;
        // What a web node of `shoal start` opens for ctx.sessions when the app sets no onSessionEnd.
        const runtimeStore = await createStore(store.url, { namespace });
        const runtime = new SessionManager({ store: runtimeStore, secrets: [SECRET], sweep: { interval: 20 } });
        const ended: string[] = [];
        try {
          const n = await node(store.url, namespace, { onSessionEnd: (s: { id: string }) => void ended.push(s.id) });
          const ids: string[] = [];
          for (let i = 0; i < 10; i++) {
            const browser = new CookieJar();
            await browser.fetch(`${n.url}/set/cart?value=x`, { method: 'POST' });
            ids.push(((await (await browser.fetch(`${n.url}/id`)).json()) as { id: string }).id);
            await browser.fetch(`${n.url}/logout`, { method: 'POST' });
          }
          const deadline = Date.now() + 8000;
          while (Date.now() < deadline && ids.some((id) => !ended.includes(id))) await sleep(50);
          await sleep(300);
          expect(ended.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
        } finally {
          await runtime.close();
          await runtimeStore.close();
        }
      },
    );
  });
}
