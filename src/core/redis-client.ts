import type { Redis, RedisOptions } from 'ioredis';
import { importOptional } from './lazy-import.js';

/**
 * A Redis connection the store or the bus opens for itself. `extra` adds a caller's own
 * settings; connection errors go to `onError` (failures surface per call, and without a
 * listener ioredis would print every reconnect error).
 */
export async function openRedis(
  url: string,
  feature: string,
  timeoutMs: number,
  onError: (err: Error) => void,
  extra: RedisOptions = {},
): Promise<Redis> {
  const { Redis: RedisClient } = await importOptional<typeof import('ioredis')>('ioredis', feature);
  const settings: RedisOptions = {
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // Queue briefly while (re)connecting, but fail each command after one reconnect attempt.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    // A script whose reply was lost may have run: resending it could apply a commit or a publish twice.
    autoResendUnfulfilledCommands: false,
    // Reconnect forever: the caller heals by itself when Redis comes back.
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
    ...extra,
  };
  const client = new RedisClient(url, settings);
  client.on('error', onError);
  return client;
}

/** A failed call's message, plus the last connection error when that one says something else. */
export function failureDetail(err: unknown, lastError: Error | undefined): string {
  const detail = err instanceof Error ? err.message : String(err);
  const last = lastError && lastError.message !== detail ? ` (last connection error: ${lastError.message})` : '';
  return `${detail}${last}`;
}
