import { ConfigError } from '../core/errors.js';
import type { SessionStore, StoreOptions } from './contract.js';

export type { SessionStore, StoreOptions } from './contract.js';

/** The embedded default: one SQLite file shared by every process on this machine. */
export const DEFAULT_STORE_URL = 'sqlite:.shoal/shoal.db';

/**
 * Opens the session store a URL names (12-factor: SHOAL_STORE):
 * `sqlite:<path>` · `memory:` · `redis://…` / `rediss://…` · `postgres://…` · `memcached://host:port[,host:port]`.
 * Each backend module is imported only when used, so apps install only the client they need.
 */
export async function createStore(url: string = DEFAULT_STORE_URL, options: StoreOptions = {}): Promise<SessionStore> {
  const scheme = url.slice(0, url.indexOf(':') + 1);
  switch (scheme) {
    case 'memory:':
      return (await import('./memory.js')).memoryStore();
    case 'sqlite:':
      return (await import('./sqlite.js')).sqliteStore({ path: url.slice('sqlite:'.length) || ':memory:', ...options });
    case 'redis:':
    case 'rediss:':
      return (await import('./redis.js')).redisStore({ url, ...options });
    case 'postgres:':
    case 'postgresql:':
      return (await import('./postgres.js')).postgresStore({ url, ...options });
    case 'memcached:':
      return (await import('./memcached.js')).memcachedStore({ url, ...options });
    default:
      throw new ConfigError(
        `SHOAL_STORE "${redact(url)}" has an unknown scheme. Use one of: sqlite:.shoal/shoal.db, memory:, redis://host:6379, rediss://…, postgres://user@host/db, memcached://host:11211`,
      );
  }
}

/** URLs may carry passwords: never echo them into errors or logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
