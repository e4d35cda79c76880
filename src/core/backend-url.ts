/** The kinds of backend a SHOAL_STORE or SHOAL_BUS URL can name. */
export type Backend = 'memory' | 'sqlite' | 'redis' | 'postgres' | 'memcached' | 'nats' | 'amqp';

const BACKENDS: Record<string, Backend> = {
  'memory:': 'memory',
  'sqlite:': 'sqlite',
  'redis:': 'redis',
  'rediss:': 'redis',
  'redis+cluster:': 'redis',
  'rediss+cluster:': 'redis',
  'redis+sentinel:': 'redis',
  'rediss+sentinel:': 'redis',
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'memcached:': 'memcached',
  'nats:': 'nats',
  'amqp:': 'amqp',
  'amqps:': 'amqp',
};

/** The backends that hold sessions (a SHOAL_STORE); nats and amqp are buses only. */
const STORE_BACKENDS: ReadonlySet<Backend> = new Set(['memory', 'sqlite', 'redis', 'postgres', 'memcached']);

/** Every scheme a store URL may have, for messages that list them: memory: sqlite: redis: … */
export const STORE_SCHEMES: readonly string[] = Object.keys(BACKENDS).filter((s) =>
  STORE_BACKENDS.has(BACKENDS[s] as Backend),
);

/** Whether a URL's scheme names a backend that holds sessions. */
export function isStoreUrl(url: string): boolean {
  const backend = backendOf(url);
  return backend !== undefined && STORE_BACKENDS.has(backend);
}

/** Which backend a URL's scheme names (case aside), or undefined for a scheme shoal does not know. */
export function backendOf(url: string): Backend | undefined {
  const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
  return Object.hasOwn(BACKENDS, scheme) ? BACKENDS[scheme] : undefined;
}

/** The file a `sqlite:<path>` URL names; `sqlite:` alone keeps the database in memory. */
export function sqlitePathOf(url: string): string {
  return url.slice('sqlite:'.length) || ':memory:';
}
