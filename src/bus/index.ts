import { backendOf } from '../core/backend-url.js';
import { ConfigError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import type { Bus, BusOptions } from './contract.js';
import { busFromUrl } from './from-url.js';

export type { Bus, BusMessage, BusOptions, Position, PublishInput, ReadResult } from './contract.js';

/** The embedded default: one SQLite file shared by every process on this machine. */
export const DEFAULT_BUS_URL = 'sqlite:.shoal/shoal.db';

/**
 * The one default rule for a bus URL, the same in the library and the CLI: the store's URL when
 * that backend is also a bus (sqlite, redis, postgres), so web nodes and gateways that name only a
 * store still meet on one bus; otherwise the embedded default.
 */
export function busUrlFor(storeUrl: string | undefined): string {
  const backend = storeUrl ? backendOf(storeUrl) : undefined;
  return backend === 'sqlite' || backend === 'redis' || backend === 'postgres' ? (storeUrl as string) : DEFAULT_BUS_URL;
}

/**
 * Opens the message bus a URL names (12-factor: SHOAL_BUS):
 * `sqlite:<path>` · `memory:` · `redis://…` / `rediss://…` · `redis+cluster://h1:p1,h2:p2` ·
 * `redis+sentinel://s1:p1,s2:p2/mymaster` · `postgres://…` · `nats://a:4222,b:4222,c:4222[?replicas=3]` ·
 * `amqp://…` / `amqps://…` (docs/deploying.md has the table). A NATS stream gets `?replicas` replicas,
 * by default one per server listed, at most 3; an existing one is brought to an asked `?replicas`.
 * Each backend module is imported only when used, so apps install only the client they need.
 * An unknown scheme's error names `createBus(url)`, what the URL was given to.
 */
export async function createBus(url: string = DEFAULT_BUS_URL, options: BusOptions = {}): Promise<Bus> {
  if (typeof url !== 'string') {
    throw new ConfigError(
      `createBus() takes a bus URL string, e.g. createBus('redis://127.0.0.1:6379'), or none for ${DEFAULT_BUS_URL}; got ${kindOf(url)}`,
    );
  }
  return busFromUrl(url, options, 'createBus(url):');
}
