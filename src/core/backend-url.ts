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

/** Which backend a URL's scheme names (case aside), or undefined for a scheme shoal does not know. */
export function backendOf(url: string): Backend | undefined {
  const scheme = url.slice(0, url.indexOf(':') + 1).toLowerCase();
  return Object.hasOwn(BACKENDS, scheme) ? BACKENDS[scheme] : undefined;
}

/** The file a `sqlite:<path>` URL names; `sqlite:` alone keeps the database in memory. */
export function sqlitePathOf(url: string): string {
  return url.slice('sqlite:'.length) || ':memory:';
}
