import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express, { type Request } from 'express';
import { createStore } from 'shoal';
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

async function node(url: string, namespace: string) {
  const middleware = session({
    secret: SECRET,
    store: await createStore(url, { namespace }),
    resave: false,
    saveUninitialized: false,
  });
  const app = express();
  app.use(middleware);
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
  });
}
