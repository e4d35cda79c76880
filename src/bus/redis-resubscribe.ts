import type { Cluster } from 'ioredis';
import type { Logger } from '../core/logger.js';
import { fullJitter, sleep } from '../core/timing.js';

const MAX_ATTEMPTS = 60;
const MAX_PAUSE_MS = 2000;
/** Channels renewed at once: a failover with thousands of channels must not flood the new masters. */
const BATCH = 64;

/**
 * After a Redis Cluster failover, ioredis re-issues SSUBSCRIBE on the new masters by itself but
 * drops the command's failure: a timeout on a busy node leaves the channel silently unsubscribed,
 * and its messages never arrive. This renews every channel's subscription, retrying until the node
 * answers; `renewed` then replays what was published meanwhile.
 *
 * Each call supersedes the previous one (a newer topology makes an older renewal moot).
 */
export function clusterResubscriber(o: {
  subscriber: Cluster;
  /** The live pub/sub names to keep. */
  names: () => string[];
  /** Whether a name is still wanted (channels come and go during a renewal). */
  wanted: (name: string) => boolean;
  renewed: (name: string) => void;
  closed: () => boolean;
  logger: Logger;
}): () => void {
  let generation = 0;
  const current = (mine: number, name: string) => mine === generation && !o.closed() && o.wanted(name);

  const renew = async (mine: number, name: string): Promise<void> => {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS && current(mine, name); attempt++) {
      try {
        // SUNSUBSCRIBE first: ioredis keeps a list per slot that a repeated SSUBSCRIBE would grow.
        await o.subscriber.sunsubscribe(name).catch(() => {});
        await o.subscriber.ssubscribe(name);
        // Unsubscribed meanwhile: do not leave the renewed subscription behind.
        if (!o.wanted(name)) await o.subscriber.sunsubscribe(name).catch(() => {});
        else o.renewed(name);
        return;
      } catch (err) {
        if (attempt === MAX_ATTEMPTS) {
          o.logger.error({ name, err: String(err) }, 'bus could not renew a subscription after a failover');
          return;
        }
        await sleep(fullJitter(MAX_PAUSE_MS, attempt, 50));
      }
    }
  };

  return () => {
    const mine = ++generation;
    const names = o.names();
    let next = 0;
    // BATCH workers, each taking the next channel when its last one holds or gives up: a channel
    // whose slot is still failing over does not hold back the channels of the healthy slots.
    const worker = async () => {
      while (next < names.length && mine === generation) await renew(mine, names[next++] as string);
    };
    for (let w = 0; w < Math.min(BATCH, names.length); w++) void worker();
  };
}
