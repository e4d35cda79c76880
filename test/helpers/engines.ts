import { execFileSync } from 'node:child_process';
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

/** The test Redis with database `db` in its URL's path (`redis://host:port/<db>`). */
export function redisUrlWithDatabase(db: number): string {
  const url = new URL(ENGINE_URLS.redis);
  url.pathname = `/${db}`;
  return url.toString();
}

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
  return skipBecause(
    `${engine} is not reachable at ${url.host} (set SHOAL_TEST_${engine.toUpperCase()} to point elsewhere)`,
  );
}

/**
 * The reason some tests cannot run here, printed and returned for `describe.skipIf`; thrown
 * instead under SHOAL_REQUIRE_ENGINES=1, so CI fails rather than skips them.
 */
export function skipBecause(reason: string): string {
  if (requireEngines) throw new Error(`SHOAL_REQUIRE_ENGINES=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
  return reason;
}

/**
 * Undefined when every command (`[name, ...args]`, e.g. `['redis-server', '--version']`) runs,
 * otherwise `skipBecause("<name> is not installed (<purpose>)")` for the first that does not.
 */
export function commandsSkipReason(commands: string[][], purpose: string): string | undefined {
  for (const [bin, ...args] of commands) {
    try {
      execFileSync(bin as string, args, { stdio: 'ignore', timeout: 5000 });
    } catch {
      return skipBecause(`${bin} is not installed (${purpose})`);
    }
  }
  return undefined;
}
