import type { Cluster } from 'ioredis';
import { withDeadline } from '../core/deadline.js';
import { openRedis, parseRedisUrl } from '../core/redis-client.js';

/**
 * The warning for a Redis Cluster whose nodes run with `cluster-require-full-coverage yes`: while one
 * master's slots fail over, every node then refuses every call, where `no` keeps the other masters'
 * slots serving (docs/deploying.md). Undefined when the URL is no Cluster's, when every node that
 * answers says `no`, or when CONFIG is refused or unanswered (managed Redis): then nothing is known.
 */
export async function fullCoverageWarning(url: string, timeoutMs: number): Promise<string | undefined> {
  let cluster: Cluster | undefined;
  try {
    if (parseRedisUrl(url).kind !== 'cluster') return undefined;
    cluster = (await openRedis(url, 'shoal doctor', timeoutMs, () => {})) as Cluster;
    const c = cluster;
    await withDeadline(() => c.ping(), timeoutMs);
    const strict = await Promise.all(
      c.nodes('all').map(async (node) => {
        const reply = await withDeadline(() => node.config('GET', 'cluster-require-full-coverage'), timeoutMs).catch(
          () => undefined,
        );
        const value = Array.isArray(reply) ? String(reply[1]) : undefined;
        return value === 'yes' ? `${node.options.host}:${node.options.port}` : undefined;
      }),
    );
    const nodes = strict.filter((n): n is string => n !== undefined);
    if (nodes.length === 0) return undefined;
    return (
      `Redis Cluster node${nodes.length === 1 ? '' : 's'} ${nodes.join(', ')} run${nodes.length === 1 ? 's' : ''} with ` +
      'cluster-require-full-coverage yes: while one master fails over, the cluster refuses every call, ' +
      "not only those of that master's slots. Set it to no on every node (CONFIG SET " +
      'cluster-require-full-coverage no, and in redis.conf)'
    );
  } catch {
    // Not reachable: the store and bus checks above already said so.
    return undefined;
  } finally {
    cluster?.disconnect();
  }
}
