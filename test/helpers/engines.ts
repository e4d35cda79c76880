import { connect } from 'node:net';

/**
 * External engines (Redis, PostgreSQL, …) are used when reachable. Locally an
 * unreachable engine skips its tests with a printed reason; with
 * SHOAL_REQUIRE_ENGINES=1 (set by CI) it fails them instead, so CI always
 * exercises every engine.
 */
export const requireEngines = process.env.SHOAL_REQUIRE_ENGINES === '1';

export const ENGINE_URLS = {
  redis: process.env.SHOAL_TEST_REDIS ?? 'redis://127.0.0.1:6379/0',
  postgres: process.env.SHOAL_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test',
  memcached: process.env.SHOAL_TEST_MEMCACHED ?? 'memcached://127.0.0.1:11211',
  nats: process.env.SHOAL_TEST_NATS ?? 'nats://127.0.0.1:4222',
  amqp: process.env.SHOAL_TEST_AMQP ?? 'amqp://guest:guest@127.0.0.1:5672',
} as const;

export type Engine = keyof typeof ENGINE_URLS;

const cache = new Map<string, Promise<boolean>>();

export function tcpReachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Resolves to undefined when the engine is reachable, otherwise to the reason
 * to skip. Throws instead when engines are required.
 */
export async function engineSkipReason(engine: Engine): Promise<string | undefined> {
  const url = new URL(ENGINE_URLS[engine]);
  const key = `${url.hostname}:${url.port}`;
  let probe = cache.get(key);
  if (!probe) {
    probe = tcpReachable(url.hostname, Number(url.port));
    cache.set(key, probe);
  }
  if (await probe) return undefined;
  const reason = `${engine} is not reachable at ${url.host} (set SHOAL_TEST_${engine.toUpperCase()} to point elsewhere)`;
  if (requireEngines) throw new Error(`SHOAL_REQUIRE_ENGINES=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
  return reason;
}
