import { ConfigError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import type { SessionStore, StoreOptions } from './contract.js';
import { storeFromUrl } from './from-url.js';

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
 * An unknown scheme's error names `createStore(url)`, what the URL was given to.
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
  return storeFromUrl(rawUrl, explicit, 'createStore(url):');
}
