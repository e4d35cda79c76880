import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ended } from '../../examples/probe/app.js';
import { newSessionId } from '../../src/core/ids.js';
import type { SessionStore, StoredSession } from '../../src/stores/contract.js';
import { createStore } from '../../src/stores/index.js';
import { CookieJar } from '../helpers/cookie-jar.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { type NodeProcess, startNode, stopAll } from '../helpers/processes.js';
import { deleteKeys } from '../helpers/redis-keys.js';

/**
 * Session lifecycle and security across three probe processes sharing one
 * store, each request sent to whichever node is next (no stickiness): timeouts,
 * rotation and logout, log-out-everywhere, locks, forged cookies, the client
 * scope, encryption at rest and the size budget.
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-security-'));
const SECRET = 'security-test-secret-0123456789abcdefghijkl';
const KEY = randomBytes(32).toString('base64');
const MAX_SIZE = 64 * 1024;
const COOKIE = 'shoal.sid';
const run = randomBytes(4).toString('hex');

const stores: Array<{ name: string; url: string; skip?: string | undefined }> = [
  { name: 'sqlite', url: `sqlite:${join(dir, 'security.db')}` },
  { name: 'redis', url: ENGINE_URLS.redis, skip: await engineSkipReason('redis') },
];

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

const post = (browser: CookieJar, url: string, body?: string) => browser.fetch(url, { method: 'POST', body });
type SessionView = { id?: string; attributes: Record<string, unknown>; node: string };
const view = async (res: Response) => (await res.json()) as SessionView;

async function startProbes(tag: string, env: Record<string, string>): Promise<NodeProcess[]> {
  return Promise.all(
    [1, 2, 3].map((i) =>
      startNode({ name: `${tag}-${i}`, script: 'examples/probe/server.ts', env: { SHOAL_SECRETS: SECRET, ...env } }),
    ),
  );
}

/** Test-only cleanup of a run's Redis keys (the store itself never scans). */
async function dropRedisKeys(url: string, fragment: string): Promise<void> {
  const raw = new Redis(url, { maxRetriesPerRequest: 1 });
  await deleteKeys(raw, `shoal:*${fragment}*`, { count: 500 });
  await raw.quit();
}

const sameData = (s: StoredSession | null) => s && { rev: s.meta.rev, attributes: s.attributes };
const idOf = (cookie: string) => /shoal\.sid=([\w-]{22})\./.exec(cookie)?.[1] ?? '';

for (const store of stores) {
  describe.skipIf(store.skip !== undefined)(`session security across 3 nodes, ${store.name}`, () => {
    const namespace = `sec-${run}-${store.name}`;
    let nodes: NodeProcess[] = [];
    let raw: SessionStore;
    let rawClient: SessionStore;
    let turn = 0;
    const next = () => nodes[turn++ % nodes.length] as NodeProcess;

    beforeAll(async () => {
      nodes = await startProbes(`${store.name}-sec`, {
        SHOAL_STORE: store.url,
        SHOAL_NAMESPACE: namespace,
        SHOAL_ENCRYPTION_KEYS: KEY,
        SHOAL_MAX_SIZE: String(MAX_SIZE),
        SHOAL_LOCK_WAIT: '3s',
        SHOAL_SWEEP_INTERVAL: '250ms',
      });
      // The test's own view of the backend: what is really stored, bypassing the session layer.
      raw = await createStore(store.url, { namespace });
      rawClient = await createStore(store.url, { namespace: `${namespace}-client` });
    });
    afterAll(async () => {
      await Promise.all(nodes.map((n) => n.stop('SIGTERM')));
      await Promise.all([raw?.close(), rawClient?.close()]);
      if (store.name === 'redis') await dropRedisKeys(store.url, namespace);
    });

    it('refuses a rotated (login) id and a destroyed (logout) id on every node', async () => {
      const browser = new CookieJar();
      await post(browser, `${next().url}/set/cart`, 'book');
      const anonymous = browser.cookie;
      await post(browser, `${next().url}/login?user=rot-${run}`);
      const loggedIn = browser.cookie;
      expect(idOf(loggedIn)).not.toBe(idOf(anonymous));
      for (const node of nodes) {
        const old = await fetch(`${node.url}/session`, { headers: { cookie: anonymous } });
        expect(await view(old)).toMatchObject({ attributes: {} });
        expect(old.headers.getSetCookie().join()).toMatch(/Max-Age=0/);
        const cur = await view(await fetch(`${node.url}/session`, { headers: { cookie: loggedIn } }));
        expect(cur).toMatchObject({ id: idOf(loggedIn), attributes: { cart: 'book', userId: `rot-${run}` } });
      }
      expect(await raw.load(idOf(anonymous), Date.now())).toBeNull();

      await post(browser, `${next().url}/logout`);
      for (const node of nodes) {
        const body = await view(await fetch(`${node.url}/session`, { headers: { cookie: loggedIn } }));
        expect(body.id, node.name).toBeUndefined();
        expect(body.attributes, node.name).toEqual({});
      }
      expect(await raw.load(idOf(loggedIn), Date.now())).toBeNull();
    });

    it('lists a user’s sessions with their client, and /logout-all ends all but the current one everywhere', async () => {
      const user = `all-${run}-${store.name}`;
      const browsers = [1, 2, 3].map(() => new CookieJar());
      for (const [i, b] of browsers.entries()) {
        await b.fetch(`${nodes[i]?.url}/login?user=${user}`, {
          method: 'POST',
          headers: { 'user-agent': `TestBrowser/${i + 1}` },
        });
      }
      const [mine, other1, other2] = browsers as [CookieJar, CookieJar, CookieJar];
      const listed = (await (await mine.fetch(`${next().url}/sessions`)).json()) as {
        current: string;
        sessions: Array<{ id: string; client: string | null }>;
      };
      expect(listed.sessions.map((s) => s.id).sort()).toEqual(browsers.map((b) => idOf(b.cookie)).sort());
      expect(listed.sessions.map((s) => s.client?.split(' · ')[0]).sort()).toEqual([
        'TestBrowser/1',
        'TestBrowser/2',
        'TestBrowser/3',
      ]);

      const out = (await (await post(mine, `${next().url}/logout-all`)).json()) as { ended: number };
      expect(out.ended).toBe(2);
      for (const node of nodes) {
        for (const b of [other1, other2]) {
          const body = await view(await fetch(`${node.url}/session`, { headers: { cookie: b.cookie } }));
          expect(body.id, node.name).toBeUndefined();
        }
        const still = await view(await fetch(`${node.url}/session`, { headers: { cookie: mine.cookie } }));
        expect(still.id, node.name).toBe(idOf(mine.cookie));
      }
      const after = (await (await mine.fetch(`${next().url}/sessions`)).json()) as { sessions: unknown[] };
      expect(after.sessions).toHaveLength(1);
    });

    it('serialises /locked across nodes (increasing fencing tokens), times out cleanly, releases after an error', async () => {
      const browser = new CookieJar();
      await post(browser, `${next().url}/login?user=lock-${run}`);
      const [n1, n2, n3] = nodes as [NodeProcess, NodeProcess, NodeProcess];
      type Held = { fencingToken: number; startedAt: number; endedAt: number; node: string };
      const runs = await Promise.all(
        [n1, n2, n3].map(async (n) => {
          const res = await post(browser, `${n.url}/locked/checkout?ms=300`);
          expect(res.status).toBe(200);
          return (await res.json()) as Held;
        }),
      );
      runs.sort((a, b) => a.startedAt - b.startedAt);
      expect(new Set(runs.map((r) => r.node)).size).toBe(3);
      for (let i = 1; i < runs.length; i++) {
        const [prev, cur] = [runs[i - 1], runs[i]] as [Held, Held];
        expect(cur.startedAt).toBeGreaterThanOrEqual(prev.endedAt);
        expect(cur.fencingToken).toBeGreaterThan(prev.fencingToken);
      }

      const long = post(browser, `${n1.url}/locked/checkout?ms=1500`);
      await sleep(300);
      const statsBefore = (await (await fetch(`${n2.url}/_probe/stats`)).json()) as { stats: { lockTimeouts: number } };
      const busy = await post(browser, `${n2.url}/locked/checkout?ms=0&wait=300`);
      expect(busy.status).toBe(409);
      expect(await busy.json()).toMatchObject({
        error: 'ERR_SHOAL_LOCK_TIMEOUT',
        message: expect.stringMatching(/session lock "checkout" is held by another request/),
      });
      const statsAfter = (await (await fetch(`${n2.url}/_probe/stats`)).json()) as { stats: { lockTimeouts: number } };
      expect(statsAfter.stats.lockTimeouts).toBe(statsBefore.stats.lockTimeouts + 1);
      expect((await long).status).toBe(200);

      const failed = await post(browser, `${n3.url}/locked/checkout?ms=10&fail=1`);
      expect(failed.status).toBe(500);
      const free = await post(browser, `${n1.url}/locked/checkout?ms=0&wait=0`);
      expect(free.status).toBe(200);
    });

    it('gives forged cookies a fresh session and leaves the real session untouched on every node', async () => {
      const browser = new CookieJar();
      await post(browser, `${next().url}/set/secret`, 'real user data');
      const id = idOf(browser.cookie);
      const before = sameData(await raw.load(id, Date.now()));
      const value = browser.cookie.slice(`${COOKIE}=`.length);
      const mac = value.slice(id.length + 1);
      const flip = (c: string) => (c === 'A' ? 'B' : 'A');
      const unissued = newSessionId();
      const forged: Record<string, string> = {
        tampered: `${COOKIE}=${id}.${mac.slice(0, -1)}${flip(mac.slice(-1))}`,
        'tampered id': `${COOKIE}=${flip(id[0] ?? '')}${id.slice(1)}.${mac}`,
        unsigned: `${COOKIE}=${id}`,
        unissued: `${COOKIE}=${unissued}.${createHmac('sha256', SECRET).update(unissued).digest('base64url')}`,
        oversized: `${browser.cookie}${'A'.repeat(4100)}`,
        duplicate: `${browser.cookie}; ${browser.cookie}`,
      };
      for (const [label, header] of Object.entries(forged)) {
        for (const node of nodes) {
          const read = await view(await fetch(`${node.url}/session`, { headers: { cookie: header } }));
          expect(read.attributes, `${label} on ${node.name}`).toEqual({});
          const write = await fetch(`${node.url}/set/planted`, {
            method: 'POST',
            headers: { cookie: header },
            body: label,
          });
          expect(write.status).toBe(200);
          const fresh = idOf(write.headers.getSetCookie().find((c) => c.startsWith(`${COOKIE}=`)) ?? '');
          expect(fresh, `${label} on ${node.name}`).toMatch(/^[\w-]{22}$/);
          expect([id, unissued], `${label} on ${node.name}`).not.toContain(fresh);
        }
      }
      expect(await raw.load(unissued, Date.now())).toBeNull();
      expect(sameData(await raw.load(id, Date.now()))).toEqual(before);
      for (const node of nodes) {
        const body = await view(await fetch(`${node.url}/session`, { headers: { cookie: browser.cookie } }));
        expect(body.attributes, node.name).toEqual({ secret: 'real user data' });
      }
    });

    it('keeps the client scope through login and logout; concurrent client writes from all nodes are kept', async () => {
      const browser = new CookieJar();
      await post(browser, `${next().url}/client/theme`, 'dark');
      const clientId = ((await (await browser.fetch(`${next().url}/client`)).json()) as { id: string }).id;
      expect(clientId).toMatch(/^[\w-]{22}$/);
      await post(browser, `${next().url}/login?user=client-${run}`);
      await post(browser, `${next().url}/logout`);
      for (const node of nodes) {
        const body = (await (await browser.fetch(`${node.url}/client`)).json()) as SessionView;
        expect(body, node.name).toMatchObject({ id: clientId, attributes: { theme: 'dark' } });
      }
      const writes = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          post(browser, `${next().url}/client/k${i}`, `v${i}`).then((r) => r.status),
        ),
      );
      expect(writes.every((s) => s === 200)).toBe(true);
      const counts = await Promise.all(
        Array.from({ length: 10 }, () => post(browser, `${next().url}/client-incr/visits`).then((r) => r.status)),
      );
      expect(counts.every((s) => s === 200)).toBe(true);
      const all = (await (await browser.fetch(`${next().url}/client`)).json()) as SessionView;
      for (let i = 0; i < 30; i++) expect(all.attributes[`k${i}`]).toBe(`v${i}`);
      expect(all.attributes).toMatchObject({ theme: 'dark', visits: 10 });
      // Encrypted at rest too, in its own namespace.
      const stored = await rawClient.load(clientId, Date.now());
      expect(stored?.attributes.theme).toMatch(/^\$e1\./);
      expect(await raw.load(clientId, Date.now())).toBeNull();
    });

    it('encrypts values at rest, reads them on every node, and refuses a value swapped between sessions', async () => {
      const one = new CookieJar();
      const two = new CookieJar();
      await post(one, `${next().url}/set/card`, 'plaintext-4111-xyz');
      await post(two, `${next().url}/set/card`, 'card of two');
      const counts = await Promise.all(
        Array.from({ length: 10 }, () => post(one, `${next().url}/incr/n`).then((r) => r.status)),
      );
      expect(counts.every((s) => s === 200)).toBe(true);
      const stored = await raw.load(idOf(one.cookie), Date.now());
      for (const v of Object.values(stored?.attributes ?? {})) {
        expect(v).toMatch(/^\$e1\./);
        expect(v).not.toContain('plaintext');
      }
      for (const node of nodes) {
        expect((await view(await one.fetch(`${node.url}/session`))).attributes).toEqual({
          card: 'plaintext-4111-xyz',
          n: 10,
        });
      }
      const now = Date.now();
      const swapped = await raw.commit(
        idOf(two.cookie),
        { set: { card: stored?.attributes.card as string } },
        { now, idleDeadline: now + 60_000 },
      );
      expect(swapped.status).toBe('ok');
      for (const node of nodes) {
        const res = await two.fetch(`${node.url}/session`);
        expect(res.status).toBe(500);
        expect(await res.json()).toMatchObject({
          error: 'ERR_SHOAL_SESSION_VALUE',
          message: expect.stringMatching(/"card" could not be decrypted: it was encrypted for another session/),
        });
      }
    });

    it('refuses a value over the size budget, naming the attribute; nothing is written', async () => {
      const browser = new CookieJar();
      await post(browser, `${next().url}/set/small`, 'ok');
      const id = idOf(browser.cookie);
      const before = sameData(await raw.load(id, Date.now()));
      const res = await post(browser, `${next().url}/set/avatar`, 'x'.repeat(MAX_SIZE));
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({
        error: 'ERR_SHOAL_SESSION_VALUE',
        message: expect.stringMatching(
          new RegExp(`"avatar" is ${MAX_SIZE + 2} bytes as JSON, over the ${MAX_SIZE}-byte`),
        ),
      });
      expect(sameData(await raw.load(id, Date.now()))).toEqual(before);
    });
  });

  describe.skipIf(store.skip !== undefined)(`absolute timeout across 3 nodes, ${store.name}`, () => {
    const namespace = `abs-${run}-${store.name}`;
    let nodes: NodeProcess[] = [];
    afterAll(async () => {
      await Promise.all(nodes.map((n) => n.stop('SIGTERM')));
      if (store.name === 'redis') await dropRedisKeys(store.url, namespace);
    });

    it('ends an active session at the absolute timeout; onSessionEnd runs once, reason absolute-timeout', async () => {
      nodes = await startProbes(`${store.name}-abs`, {
        SHOAL_STORE: store.url,
        SHOAL_NAMESPACE: namespace,
        SHOAL_ABSOLUTE_TIMEOUT: '2s',
        SHOAL_SWEEP_INTERVAL: '250ms',
      });
      const browser = new CookieJar();
      const t0 = Date.now();
      await post(browser, `${nodes[0]?.url}/set/marker`, randomUUID());
      const created = Date.now();
      const id = idOf(browser.cookie);
      // Active all along: a request every 300 ms, round-robin. Alive until the deadline, whatever the activity.
      for (let i = 0; Date.now() < t0 + 1700; i++) {
        const body = await view(await browser.fetch(`${nodes[i % 3]?.url}/session`));
        expect(body.id, `request ${i} at +${Date.now() - t0} ms`).toBe(id);
        await sleep(300);
      }
      await sleep(Math.max(0, created + 2100 - Date.now()));
      for (const node of nodes) {
        const body = await view(await fetch(`${node.url}/session`, { headers: { cookie: browser.cookie } }));
        expect(body.id, node.name).toBeUndefined();
        expect(body.attributes, node.name).toEqual({});
      }
      let ended: Ended[] = [];
      for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(200)) {
        const lists = await Promise.all(
          nodes.map(async (n) => (await (await fetch(`${n.url}/_probe/ended`)).json()) as Ended[]),
        );
        ended = lists.flat().filter((e) => e.id === id);
        if (ended.length > 0) break;
      }
      await sleep(600); // a second handling, if there were one, would show up by now
      const lists = await Promise.all(
        nodes.map(async (n) => (await (await fetch(`${n.url}/_probe/ended`)).json()) as Ended[]),
      );
      ended = lists.flat().filter((e) => e.id === id);
      expect(ended).toEqual([{ ...ended[0], id, reason: 'absolute-timeout' }]);
    });
  });
}
