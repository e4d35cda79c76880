import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** A name no other run (or concurrent test) uses: namespaces, key prefixes and user names carry it. */
export function newRunId(): string {
  return `bench-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Resolves to a reason when Redis does not answer PING within a second, else undefined. */
export async function redisUnavailable(url: string): Promise<string | undefined> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (err) {
    return `Redis is not reachable at ${url} (${(err as Error).message}); start it or set BENCH_REDIS`;
  } finally {
    client.disconnect();
  }
}

/**
 * Deletes every key carrying the run id: shoal's (its SHOAL_NAMESPACE is the run id),
 * express-session's (its prefix starts with it) and the per-user sets of the run's users.
 */
export async function cleanupRun(url: string, runId: string): Promise<number> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    let cursor = '0';
    for (let i = 0; i < 100_000; i++) {
      const [next, keys] = await client.scan(cursor, 'MATCH', `*${runId}*`, 'COUNT', 1000);
      if (keys.length > 0) deleted += await client.del(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
  } finally {
    client.disconnect();
  }
  return deleted;
}

/** Median round trip of `count` sequential PINGs, ms: what a request pays per Redis call. */
export async function medianPingMs(url: string, count = 50): Promise<number> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    await client.ping();
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      await client.ping();
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    return samples[Math.floor(samples.length / 2)] ?? Number.NaN;
  } finally {
    client.disconnect();
  }
}
