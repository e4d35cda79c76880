import { resolve } from 'node:path';
import { backendOf, sqlitePathOf } from '../core/backend-url.js';
import { ConfigError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import { registryOf } from '../core/metrics.js';
import { redact } from '../core/url.js';
import { takeTimeout } from '../core/url-timeout.js';
import type { SessionStore, StoreOptions } from './contract.js';

export { takeTimeout } from '../core/url-timeout.js';
export type { SessionStore, StoreOptions } from './contract.js';

/** The embedded default: one SQLite file shared by every process on this machine. */
export const DEFAULT_STORE_URL = 'sqlite:.shoal/shoal.db';

/**
 * Opens the session store a URL names (12-factor: SHOAL_STORE):
 * `sqlite:<path>` · `memory:` · `redis://…` / `rediss://…` · `redis+cluster://h1:p1,h2:p2` ·
 * `redis+sentinel://s1:p1,s2:p2/mymaster` · `postgres://…` (several hosts: `postgres://h1,h2/db`) ·
 * `memcached://host:port[,host:port]` (docs/deploying.md has the table).
 * Each backend module is imported only when used, so apps install only the client they need.
 * Any of them may end in `?timeout=500ms` (or `&timeout=…`): how long a store call may take before it
 * fails with StoreUnavailableError, for processes configured by URL alone; an explicit `timeoutMs` wins.
 */
export async function createStore(
  rawUrl: string = DEFAULT_STORE_URL,
  explicit: StoreOptions = {},
): Promise<SessionStore> {
  if (typeof rawUrl !== 'string') {
    throw new ConfigError(
      `createStore() takes a store URL string, e.g. createStore('redis://127.0.0.1:6379'), or none for ${DEFAULT_STORE_URL}; got ${kindOf(rawUrl)}`,
    );
  }
  const { url, timeoutMs } = takeTimeout(rawUrl);
  const options: StoreOptions = { ...(timeoutMs === undefined ? {} : { timeoutMs }), ...explicit };
  registryOf(options.metrics); // a bad metrics option fails here, whichever store counts with it
  const store = await openBackend(url, options);
  if (store.kind === 'memory') return store;
  const where = store.kind === 'sqlite' ? `sqlite:${resolve(sqlitePathOf(url))}` : url;
  const prefix = (options as { keyPrefix?: string }).keyPrefix;
  const sharedAs = `${where}#${options.namespace ?? 'session'}${prefix ? `#${prefix}` : ''}`;
  return Object.defineProperty(store, 'sharedAs', { value: sharedAs, enumerable: true });
}

async function openBackend(url: string, options: StoreOptions): Promise<SessionStore> {
  switch (backendOf(url)) {
    case 'memory':
      return (await import('./memory.js')).memoryStore();
    case 'sqlite':
      return (await import('./sqlite.js')).sqliteStore({ path: sqlitePathOf(url), ...options });
    case 'redis':
      return (await import('./redis.js')).redisStore({ url, ...options });
    case 'postgres':
      return (await import('./postgres.js')).postgresStore({ url, ...options });
    case 'memcached':
      return (await import('./memcached.js')).memcachedStore({ url, ...options });
    default:
      throw new ConfigError(
        `SHOAL_STORE "${redact(url)}" has an unknown scheme. Use one of: sqlite:.shoal/shoal.db, memory:, redis://host:6379, rediss://…, redis+cluster://h1:6379,h2:6379, redis+sentinel://h1:26379,h2:26379/mymaster, postgres://user@host/db, memcached://host:11211`,
      );
  }
}
