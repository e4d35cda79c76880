import type { Redis } from 'ioredis';

export interface DeleteKeysOptions {
  /** SCAN's COUNT hint. Default 1000. */
  count?: number;
  /** At most this many SCAN calls. Default 1000. */
  rounds?: number;
}

/** Test-only cleanup of every key matching `pattern` (shoal itself never scans the keyspace). */
export async function deleteKeys(redis: Redis, pattern: string, options: DeleteKeysOptions = {}): Promise<void> {
  const { count = 1000, rounds = 1000 } = options;
  let cursor = '0';
  for (let i = 0; i < rounds; i++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', count);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
}

/** Every key matching `pattern`, paging SCAN to the end (one page may miss keys on a busy shared Redis). */
export async function scanKeys(redis: Redis, pattern: string, options: DeleteKeysOptions = {}): Promise<string[]> {
  const { count = 10_000, rounds = 10_000 } = options;
  const found: string[] = [];
  let cursor = '0';
  for (let i = 0; i < rounds; i++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', count);
    found.push(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  return found;
}
