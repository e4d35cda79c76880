import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Ended } from '../../examples/probe/app.js';
import { CookieJar } from '../helpers/cookie-jar.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { type NodeProcess, startNode, stopAll } from '../helpers/processes.js';

/**
 * onSessionEnd exactly once for the whole cluster: three probe nodes sweep one
 * store; the union of what they handled must hold every ended session once.
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-lifecycle-'));
const SECRET = 'lifecycle-test-secret-0123456789abcdefghij';
const SWEEP_MS = 250;

const stores = [
  { name: 'sqlite', url: `sqlite:${join(dir, 'lifecycle.db')}`, skip: undefined as string | undefined },
  { name: 'redis', url: ENGINE_URLS.redis, skip: await engineSkipReason('redis') },
  { name: 'postgres', url: ENGINE_URLS.postgres, skip: await engineSkipReason('postgres') },
];

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

async function startProbes(
  tag: string,
  url: string,
  env: Record<string, string>,
  sweepMs: (i: number) => number = () => SWEEP_MS,
): Promise<NodeProcess[]> {
  // Its own namespace: sweepers of other test files on the same backend must not claim these sessions.
  const namespace = `lc-${randomUUID().slice(0, 8)}`;
  return Promise.all(
    [1, 2, 3].map((i) =>
      startNode({
        name: `${tag}-${i}`,
        script: 'examples/probe/server.ts',
        env: {
          SHOAL_STORE: url,
          SHOAL_NAMESPACE: namespace,
          SHOAL_SECRETS: SECRET,
          SHOAL_SWEEP_INTERVAL: `${sweepMs(i)}ms`,
          ...env,
        },
      }),
    ),
  );
}

/** Creates one session per browser, round-robin across nodes; resolves to their ids. */
async function createSessions(nodes: NodeProcess[], count: number, spacingMs = 0): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const browser = new CookieJar();
    const node = nodes[i % nodes.length] as NodeProcess;
    await browser.fetch(`${node.url}/set/marker`, { method: 'POST', body: randomUUID() });
    const body = (await (await browser.fetch(`${node.url}/session`)).json()) as { id: string };
    ids.push(body.id);
    if (spacingMs) await new Promise((r) => setTimeout(r, spacingMs));
  }
  return ids;
}

async function collectEnded(nodes: NodeProcess[], ids: Set<string>): Promise<Ended[]> {
  const lists = await Promise.all(
    nodes.map(async (n) =>
      ((await (await fetch(`${n.url}/_probe/ended`)).json()) as Ended[]).filter((e) => ids.has(e.id)),
    ),
  );
  return lists.flat();
}

async function waitForEnds(nodes: NodeProcess[], ids: Set<string>, timeoutMs: number): Promise<Ended[]> {
  const deadline = Date.now() + timeoutMs;
  let ended: Ended[] = [];
  while (Date.now() < deadline) {
    ended = await collectEnded(nodes, ids);
    if (new Set(ended.map((e) => e.id)).size >= ids.size) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return ended;
}

for (const store of stores) {
  describe.skipIf(store.skip !== undefined)(`session lifecycle across 3 nodes, ${store.name}`, () => {
    it('ends each of 50 idle sessions exactly once, within 1 s of its deadline (+ one sweep interval)', async () => {
      const nodes = await startProbes(`${store.name}-idle`, store.url, { SHOAL_IDLE_TIMEOUT: '2s' });
      const ids = await createSessions(nodes, 50);
      const ended = await waitForEnds(nodes, new Set(ids), 8000);
      const perId = new Map<string, number>();
      for (const e of ended) perId.set(e.id, (perId.get(e.id) ?? 0) + 1);
      expect(ids.filter((id) => perId.get(id) !== 1)).toEqual([]);
      expect(ended.every((e) => e.reason === 'idle-timeout')).toBe(true);
      const lags = ended.map((e) => e.handledAt - e.endedAt);
      expect(Math.max(...lags)).toBeLessThanOrEqual(1000 + SWEEP_MS);
      expect(Math.min(...lags)).toBeGreaterThanOrEqual(0);
      await Promise.all(nodes.map((n) => n.stop('SIGTERM')));
    });

    it('ends a rotated session exactly once under its new id (logout or idle timeout), never under the old id', async () => {
      const nodes = await startProbes(`${store.name}-rotate`, store.url, { SHOAL_IDLE_TIMEOUT: '2s' });
      const node = (i: number) => (nodes[i % nodes.length] as NodeProcess).url;
      const sessions = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const browser = new CookieJar();
          const marker = randomUUID();
          await browser.fetch(`${node(i)}/set/marker`, { method: 'POST', body: marker });
          const before = (await (await browser.fetch(`${node(i)}/session`)).json()) as { id: string };
          // Login (regenerate with keepData) on another node than the one that started the session.
          await browser.fetch(`${node(i + 1)}/login?user=user-${i}`, { method: 'POST' });
          const after = (await (await browser.fetch(`${node(i + 2)}/session`)).json()) as { id: string };
          const logout = i % 2 === 0;
          if (logout) await browser.fetch(`${node(i)}/logout`, { method: 'POST' });
          return { oldId: before.id, newId: after.id, user: `user-${i}`, marker, logout };
        }),
      );
      expect(sessions.every((s) => s.oldId && s.newId && s.oldId !== s.newId)).toBe(true);
      const newIds = new Set(sessions.map((s) => s.newId));
      const allIds = new Set([...newIds, ...sessions.map((s) => s.oldId)]);
      await waitForEnds(nodes, newIds, 8000);
      // A few more sweeps on every node: a second end for any of these ids would show up by now.
      await new Promise((r) => setTimeout(r, 4 * SWEEP_MS));
      const ended = await collectEnded(nodes, allIds);
      expect(ended.filter((e) => !newIds.has(e.id)).map((e) => e.reason)).toEqual([]); // no end for an old id
      expect(ended).toHaveLength(sessions.length);
      for (const s of sessions) {
        const ends = ended.filter((e) => e.id === s.newId);
        expect(ends.map((e) => [e.reason, e.attempt, e.userId, e.attributes.marker, e.attributes.userId])).toEqual([
          [s.logout ? 'destroyed' : 'idle-timeout', 1, s.user, s.marker, s.user],
        ]);
      }
      await Promise.all(nodes.map((n) => n.stop('SIGTERM')));
    });

    it('still ends every session exactly once when a node is SIGKILLed mid-sweep', async () => {
      // Node 2 sweeps far more often than the others, so it is the one holding claims when it dies.
      const nodes = await startProbes(
        `${store.name}-kill`,
        store.url,
        { SHOAL_IDLE_TIMEOUT: '2s', SHOAL_SWEEP_LEASE: '2s', SHOAL_PROBE_END_DELAY: '800' },
        (i) => (i === 2 ? 50 : 1000),
      );
      const started = Date.now();
      const ids = await createSessions(nodes, 30, 40);
      // Deadlines fall from started+2 s onward; handlers take 0.8 s: kill one node while it holds claims.
      await new Promise((r) => setTimeout(r, Math.max(0, started + 2600 - Date.now())));
      const victim = nodes[1] as NodeProcess;
      const victimFinished = await collectEnded([victim], new Set(ids));
      await victim.stop('SIGKILL');
      const survivors = nodes.filter((n) => n !== victim);
      const ended = await waitForEnds(survivors, new Set(ids), 12_000);
      const perId = new Map<string, number>();
      for (const e of ended) perId.set(e.id, (perId.get(e.id) ?? 0) + 1);
      for (const e of victimFinished) perId.set(e.id, (perId.get(e.id) ?? 0) + 1);
      // What the victim finished before it died plus what the survivors handled
      // covers every session, each exactly once; its unfinished claims were retried.
      expect(ids.filter((id) => perId.get(id) !== 1)).toEqual([]);
      expect(ended.some((e) => e.attempt >= 2)).toBe(true);
      await Promise.all(survivors.map((n) => n.stop('SIGTERM')));
    });
  });
}
