import { backendOf, sqlitePathOf } from '../core/backend-url.js';
import { ConfigError } from '../core/errors.js';
import { redact } from '../core/url.js';
import { takeTimeout } from '../core/url-timeout.js';
import type { Bus, BusOptions } from './contract.js';

/**
 * Opens the bus a URL names: createBus's work, for callers that know where the URL came from.
 * `source` names it when the scheme is unknown, so the message points at what to correct: the
 * variable when the CLI read the URL from the environment (SHOAL_BUS), else the call it was passed to.
 * Each backend module is imported only when used, so apps install only the client they need.
 */
export async function busFromUrl(url: string, options: BusOptions, source: string): Promise<Bus> {
  // `?timeout=` as on a store URL (the bus defaults to the store's URL): how long a bus call may take.
  const taken = takeTimeout(url, 'bus');
  if (taken.timeoutMs !== undefined && options.timeoutMs === undefined) {
    options = { ...options, timeoutMs: taken.timeoutMs };
  }
  url = taken.url;
  switch (backendOf(url)) {
    case 'memory':
      return (await import('./memory.js')).memoryBus(options);
    case 'sqlite':
      return (await import('./sqlite.js')).sqliteBus({ path: sqlitePathOf(url), ...options });
    case 'redis':
      return (await import('./redis.js')).redisBus({ url, ...options });
    case 'postgres':
      return (await import('./postgres.js')).postgresBus({ url, ...options });
    case 'nats':
      return (await import('./nats.js')).natsBus({ url, ...options });
    case 'amqp':
      return (await import('./amqp.js')).amqpBus({ url, ...options });
    default:
      throw new ConfigError(
        `${source} "${redact(url)}" has an unknown scheme. Use one of: sqlite:.shoal/shoal.db, memory:, ` +
          'redis://host:6379, rediss://…, redis+cluster://h1:6379,h2:6379, redis+sentinel://h1:26379,h2:26379/mymaster, ' +
          'postgres://user@host/db, nats://host:4222, amqp://user:pass@host:5672, amqps://…',
      );
  }
}
