import { withDeadline } from '../core/deadline.js';
import { importOptional } from '../core/lazy-import.js';
import { parseRedisUrl, sentinelConnection } from '../core/redis-client.js';

/**
 * The warning for a Sentinel set with no replica to promote: sentinels learn of replicas only from
 * the primary's INFO, so when none of them knows one, a primary that fails is never replaced and
 * the store or bus stays down until it comes back. Undefined when the URL is no Sentinel's, when a
 * sentinel that answers knows a replica, or when none answers (the store and bus checks say so).
 */
export async function sentinelReplicaWarning(url: string, timeoutMs: number): Promise<string | undefined> {
  let target: ReturnType<typeof parseRedisUrl>;
  try {
    target = parseRedisUrl(url);
  } catch {
    return undefined;
  }
  if (target.kind !== 'sentinel') return undefined;
  const t = target;
  const ioredis = await importOptional<typeof import('ioredis')>('ioredis', 'the Redis store and bus');
  const views = await Promise.all(
    t.sentinels.map(async (s) => {
      const client = sentinelConnection(ioredis, t, s, timeoutMs, { lazyConnect: true });
      client.on('error', () => {});
      try {
        await withDeadline(() => client.connect(), timeoutMs);
        const flat = (await withDeadline(() => client.call('SENTINEL', 'MASTER', t.name), timeoutMs)) as unknown;
        if (!Array.isArray(flat)) return undefined;
        const at = flat.indexOf('num-slaves');
        return at < 0 ? undefined : Number(flat[at + 1]);
      } catch {
        return undefined;
      } finally {
        client.disconnect();
      }
    }),
  );
  const answered = views.filter((n): n is number => n !== undefined);
  if (answered.length === 0 || answered.some((n) => n > 0)) return undefined;
  return (
    `the sentinels know no replica of ${t.name}: if its primary fails, they have none to promote and the store or bus ` +
    "stays down until it is back. Run a replica (replicaof <the primary's host and port>); the sentinels learn of it " +
    "from the primary's INFO within 10 s"
  );
}
