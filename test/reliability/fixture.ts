import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import type { CookieJar } from '../helpers/cookie-jar.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { type FaultProxy, faultProxy, targetOf, viaProxy } from '../helpers/fault-proxy.js';
import { type NodeProcess, startNode } from '../helpers/processes.js';
import { deleteKeys } from '../helpers/redis-keys.js';

/** Shared by the reliability scenarios: probe processes behind a fault proxy, and small timing helpers. */
export const SECRET = 'reliability-test-secret-0123456789abcdefgh';

/** Runs one named step of a scenario; a failure says which step it was. */
export async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Error) err.message = `[${name}] ${err.message}`;
    throw err;
  }
}

/** A networked store the probe can reach through a proxy; skipped with the reason when its engine is down. */
export interface NetworkStore {
  name: 'redis' | 'postgres';
  url: string;
  skip: string | undefined;
}

export async function networkStores(): Promise<NetworkStore[]> {
  return [
    { name: 'redis', url: ENGINE_URLS.redis, skip: await engineSkipReason('redis') },
    { name: 'postgres', url: ENGINE_URLS.postgres, skip: await engineSkipReason('postgres') },
  ];
}

/**
 * Something set up per reachable networked store before the file's tests (side by side) and
 * torn down after them; a test finds its store's setup by name. Call at the top of a test file.
 */
export async function perStore<T>(
  setUp: (store: NetworkStore) => Promise<T>,
  tearDown: (setup: T) => Promise<void>,
): Promise<{ stores: NetworkStore[]; setups: Map<string, T> }> {
  const stores = await networkStores();
  const setups = new Map<string, T>();
  beforeAll(async () => {
    await Promise.all(stores.filter((s) => s.skip === undefined).map(async (s) => setups.set(s.name, await setUp(s))));
  }, 60_000);
  afterAll(() => Promise.all([...setups.values()].map(tearDown)));
  return { stores, setups };
}

/** `url` through the proxy, with `?timeout=` for the store factory (src/stores/index.ts takes it off). */
export function storeUrlVia(url: string, proxy: FaultProxy, timeout: string): string {
  const proxied = viaProxy(url, proxy);
  return `${proxied}${proxied.includes('?') ? '&' : '?'}timeout=${timeout}`;
}

export interface ProbeCluster {
  proxy: FaultProxy;
  nodes: NodeProcess[];
  /** The store namespace of this cluster (SHOAL_NAMESPACE): its keys/rows, removed by close(). */
  namespace: string;
  /** SHOAL_BUS of the nodes: a SQLite file of this cluster, so gateways in the test can share it. */
  busUrl: string;
  /** Stops the nodes and the proxy, and removes what the nodes stored. */
  close(): Promise<void>;
}

/** `count` probe processes whose store is `url` reached through one fault proxy. */
export async function probesBehindProxy(
  name: string,
  url: string,
  count: number,
  timeout: string,
  env: Record<string, string> = {},
): Promise<ProbeCluster> {
  const proxy = await faultProxy(targetOf(url));
  const namespace = `rel-${randomUUID().slice(0, 8)}`;
  const scratch = scratchDir('shoal-rel-bus-');
  const busUrl = `sqlite:${join(scratch.dir, 'bus.db')}`;
  const nodes: NodeProcess[] = [];
  try {
    const started = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        startNode({
          name: `${name}-${i + 1}`,
          script: 'examples/probe/server.ts',
          env: {
            SHOAL_STORE: storeUrlVia(url, proxy, timeout),
            SHOAL_BUS: busUrl,
            SHOAL_NAMESPACE: namespace,
            SHOAL_SECRETS: SECRET,
            ...env,
          },
        }),
      ),
    );
    nodes.push(...started);
  } catch (err) {
    await proxy.close();
    scratch.remove();
    throw err;
  }
  return {
    proxy,
    nodes,
    namespace,
    busUrl,
    async close() {
      for (const n of nodes) {
        // A node that died on its own is a finding: show why.
        if (n.child.exitCode !== null || n.child.signalCode !== null) {
          console.warn(
            `[${n.name}] exited on its own (${n.child.exitCode ?? n.child.signalCode}):\n${n.output().slice(-4000)}`,
          );
        }
      }
      await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
      await proxy.close();
      scratch.remove();
      await dropNamespace(url, namespace);
    },
  };
}

/** Test-only cleanup of everything the probe stored under `namespace` (session and client scopes). */
export async function dropNamespace(url: string, namespace: string): Promise<void> {
  const scopes = [namespace, `${namespace}-client`];
  if (url.startsWith('redis')) {
    const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      await redis.connect();
      for (const scope of scopes) {
        for (const pattern of [`shoal:{${scope}:*`, `shoal:${scope}:*`]) await deleteKeys(redis, pattern);
      }
    } finally {
      redis.disconnect();
    }
  } else if (url.startsWith('postgres')) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('DELETE FROM shoal_sessions WHERE namespace = ANY($1)', [scopes]);
      await client.query('DELETE FROM shoal_sessions_locks WHERE namespace = ANY($1)', [scopes]);
    } finally {
      await client.end().catch(() => {});
    }
  }
}

/** A probe /session answer. */
export interface SessionView {
  id?: string;
  attributes: Record<string, unknown>;
  node: string;
}

export interface Timed {
  status: number;
  ms: number;
  body: Record<string, unknown>;
  setCookie: string[];
}

/** One request as a browser (cookie jar), with its duration; a hang is cut at `limitMs` and reported as status 0. */
export async function timed(jar: CookieJar, url: string, init: RequestInit = {}, limitMs = 10_000): Promise<Timed> {
  const started = Date.now();
  try {
    const res = await jar.fetch(url, { ...init, signal: AbortSignal.timeout(limitMs) });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { text };
    }
    return { status: res.status, ms: Date.now() - started, body, setCookie: res.headers.getSetCookie() };
  } catch (err) {
    return { status: 0, ms: Date.now() - started, body: { error: String(err) }, setCookie: [] };
  }
}

/** A scratch directory for SQLite files, removed by the returned function. */
export function scratchDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export { sleep };
