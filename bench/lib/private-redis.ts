import { Redis } from 'ioredis';
import { launched } from './cpus.js';
import { hasCommand } from './has-command.js';
import { freePort, ROOT, spawnTracked } from './nodes.js';

export interface BenchRedis {
  url: string;
  /** The redis-server process, when this run started its own (its CPU and command counts are then the run's alone). */
  pid: number | null;
  /** True when the run has a Redis to itself. */
  private: boolean;
  stop(): void;
}

/**
 * A throwaway redis-server on a free loopback port, no persistence: realtime scenarios
 * read INFO commandstats and Redis CPU, which on the shared Redis would include every
 * other client's traffic, and the gateway keeps sessions in the default namespace, which
 * a private server makes trivially clean. Falls back to `sharedUrl` when redis-server is
 * not installed (the numbers then say so).
 */
export async function benchRedis(sharedUrl: string, launcher: string[] = []): Promise<BenchRedis> {
  if (!hasCommand('redis-server')) return { url: sharedUrl, pid: null, private: false, stop: () => {} };
  const port = await freePort();
  const [command, args] = launched(launcher, 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'yes',
  ]);
  const child = spawnTracked(command, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const url = `redis://127.0.0.1:${port}/0`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (err) {
      client.disconnect();
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not start: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  client.disconnect();
  return { url, pid: child.pid ?? null, private: true, stop: () => child.kill('SIGKILL') };
}

/** INFO commandstats as command → calls. */
export async function commandStats(client: Redis): Promise<Map<string, number>> {
  const info = await client.info('commandstats');
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1] as string, Number(m[2]));
  return out;
}

/** after − before per command, non-zero only, largest first. */
export function commandDelta(before: Map<string, number>, after: Map<string, number>): Array<[string, number]> {
  return [...after]
    .map(([cmd, n]): [string, number] => [cmd, n - (before.get(cmd) ?? 0)])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
}
