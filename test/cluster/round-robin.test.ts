import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { type NodeProcess, startNode, stopAll } from '../helpers/processes.js';

/**
 * The problem shoal exists for: three nodes behind a round-robin balancer, one
 * browser, 100 concurrent writes. express-session + connect-redis keeps 2–34 of them, by machine
 * (bench/concurrency.ts).
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-cluster-'));
const SECRET = 'cluster-test-secret-0123456789abcdefghijkl';

const stores: Array<{ name: string; url: string; skip?: string | undefined }> = [
  { name: 'sqlite', url: `sqlite:${join(dir, 'cluster.db')}` },
  { name: 'redis', url: `${ENGINE_URLS.redis}`, skip: await engineSkipReason('redis') },
  { name: 'postgres', url: ENGINE_URLS.postgres, skip: await engineSkipReason('postgres') },
  { name: 'memcached', url: ENGINE_URLS.memcached, skip: await engineSkipReason('memcached') },
];

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

for (const store of stores) {
  describe.skipIf(store.skip !== undefined)(`3 probe nodes, round-robin, ${store.name} store`, () => {
    let nodes: NodeProcess[] = [];
    let turn = 0;
    const next = () => nodes[turn++ % nodes.length] as NodeProcess;

    const namespace = `rr-${randomUUID().slice(0, 8)}`;
    it('starts three nodes on one store', async () => {
      nodes = await Promise.all(
        [1, 2, 3].map((i) =>
          startNode({
            name: `${store.name}-web${i}`,
            script: 'examples/probe/server.ts',
            env: { SHOAL_STORE: store.url, SHOAL_NAMESPACE: namespace, SHOAL_SECRETS: SECRET },
          }),
        ),
      );
      expect(nodes).toHaveLength(3);
    });

    it('keeps 100 of 100 concurrent distinct-key writes and counts 100 of 100 concurrent increments', async () => {
      const browser = new CookieJar();
      const login = await browser.fetch(`${next().url}/login?user=alice`, { method: 'POST' });
      expect(login.status).toBe(200);
      expect(browser.cookie).not.toBe('');

      const writes = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          browser.fetch(`${next().url}/set/k${i}`, { method: 'POST', body: `v${i}` }).then((r) => r.status),
        ),
      );
      expect(writes.filter((s) => s === 200)).toHaveLength(100);

      const incrs = await Promise.all(
        Array.from({ length: 100 }, () =>
          browser.fetch(`${next().url}/incr/n`, { method: 'POST' }).then((r) => r.status),
        ),
      );
      expect(incrs.filter((s) => s === 200)).toHaveLength(100);

      const servedBy = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const res = await browser.fetch(`${next().url}/session`);
        const body = (await res.json()) as { attributes: Record<string, unknown>; node: string };
        servedBy.add(body.node);
        const keys = Object.keys(body.attributes).filter((k) => /^k\d+$/.test(k));
        expect(keys).toHaveLength(100);
        expect(body.attributes.k42).toBe('v42');
        expect(body.attributes.n).toBe(100);
        expect(body.attributes.userId).toBe('alice');
      }
      expect(servedBy.size).toBe(3);
    });

    it('reads its own write on the next request, whatever node serves it', async () => {
      const browser = new CookieJar();
      for (let i = 0; i < 30; i++) {
        await browser.fetch(`${next().url}/set/step`, { method: 'POST', body: String(i) });
        const body = (await (await browser.fetch(`${next().url}/session`)).json()) as { attributes: { step?: string } };
        expect(body.attributes.step).toBe(String(i));
      }
    });

    it('logout on one node ends the session on every node; the old cookie gets a fresh session', async () => {
      const browser = new CookieJar();
      await browser.fetch(`${next().url}/login?user=bob`, { method: 'POST' });
      await browser.fetch(`${next().url}/set/secret`, { method: 'POST', body: 'x' });
      const stolen = browser.cookie;
      const out = await browser.fetch(`${next().url}/logout`, { method: 'POST' });
      expect(out.headers.getSetCookie().join()).toMatch(/Max-Age=0/);
      for (const node of nodes) {
        const res = await fetch(`${node.url}/session`, { headers: { cookie: stolen } });
        const body = (await res.json()) as { id?: string; attributes: Record<string, unknown> };
        expect(body.id).toBeUndefined();
        expect(body.attributes).toEqual({});
      }
    });

    it('stops the nodes', async () => {
      await Promise.all(nodes.map((n) => n.stop('SIGTERM')));
    });
  });
}
