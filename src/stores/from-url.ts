import { resolve } from 'node:path';
import { backendOf, sqlitePathOf } from '../core/backend-url.js';
import { ConfigError } from '../core/errors.js';
import { registryOf } from '../core/metrics.js';
import { redact } from '../core/url.js';
import { takeTimeout } from '../core/url-timeout.js';
import type { SessionStore, StoreOptions } from './contract.js';

/**
 * Opens the store a URL names: createStore's work, for callers that know where the URL came from.
 * `source` names it when the scheme is unknown, so the message points at what to correct: the
 * variable when the CLI read the URL from the environment (SHOAL_STORE), else the call it was passed to.
 */
export async function storeFromUrl(rawUrl: string, explicit: StoreOptions, source: string): Promise<SessionStore> {
  const { url, timeoutMs } = takeTimeout(rawUrl);
  const options: StoreOptions = { ...(timeoutMs === undefined ? {} : { timeoutMs }), ...explicit };
  registryOf(options.metrics); // a bad metrics option fails here, whichever store counts with it
  const store = await openBackend(url, options, source);
  if (store.kind === 'memory') return store;
  const where = store.kind === 'sqlite' ? `sqlite:${resolve(sqlitePathOf(url))}` : url;
  const prefix = (options as { keyPrefix?: string }).keyPrefix;
  const sharedAs = `${where}#${options.namespace ?? 'session'}${prefix ? `#${prefix}` : ''}`;
  return Object.defineProperty(store, 'sharedAs', { value: sharedAs, enumerable: true });
}

/** Each backend module is imported only when used, so apps install only the client they need. */
async function openBackend(url: string, options: StoreOptions, source: string): Promise<SessionStore> {
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
        `${source} "${redact(url)}" has an unknown scheme. Use one of: sqlite:.shoal/shoal.db, memory:, redis://host:6379, rediss://…, redis+cluster://h1:6379,h2:6379, redis+sentinel://h1:26379,h2:26379/mymaster, postgres://user@host/db, memcached://host:11211`,
      );
  }
}
