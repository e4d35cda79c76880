import { ConfigError } from '../core/errors.js';
import type { LogLine } from '../core/logger.js';
import { fullJitter, sleep } from '../core/timing.js';

/** The pause between attempts: at least MIN_PAUSE_MS, then full jitter up to MAX_PAUSE_MS. */
const MIN_PAUSE_MS = 200;
const BASE_PAUSE_MS = 250;
const MAX_PAUSE_MS = 5000;

export interface OwnSubscriptions {
  /** Why the gateway's own channels are not subscribed yet; undefined once they are. */
  problem(): string | undefined;
  /** Ends the retries (the gateway stops). */
  stop(): void;
}

/**
 * Subscribes the gateway's own channels (presence, control, canary) through `subscribe`, which
 * must be safe to run again after a failure. The first attempt is awaited: a ConfigError from it
 * is thrown, since no retry can mend a configuration. Any other failure (the bus does not answer
 * yet) is retried in the background with full-jitter backoff until it succeeds, and `problem()`
 * says why the gateway is not ready meanwhile, so it stays up and its /readyz answers 503, as a
 * web node whose store does not answer does.
 */
export async function subscribeOwnChannels(
  subscribe: () => Promise<void>,
  log: (line: LogLine) => void,
): Promise<OwnSubscriptions> {
  let problem: string | undefined;
  let stopped = false;
  try {
    await subscribe();
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    problem = messageOf(err);
  }
  if (problem !== undefined) {
    log({ level: 'warn', msg: 'gateway not ready: its bus subscriptions failed; retrying', problem });
    void (async () => {
      const started = Date.now();
      for (let attempt = 1; !stopped; attempt++) {
        await sleep(MIN_PAUSE_MS + fullJitter(MAX_PAUSE_MS, attempt, BASE_PAUSE_MS));
        if (stopped) return;
        try {
          await subscribe();
          problem = undefined;
          log({ level: 'info', msg: 'gateway subscribed to the bus', attempts: attempt + 1, ms: Date.now() - started });
          return;
        } catch (err) {
          problem = messageOf(err);
          // A configuration error cannot mend itself: say so once and stop trying; /readyz keeps saying it.
          if (err instanceof ConfigError) {
            log({ level: 'error', msg: 'gateway cannot subscribe to the bus', problem });
            return;
          }
        }
      }
    })();
  }
  return {
    problem: () => (problem === undefined ? undefined : `not subscribed to the bus yet: ${problem}`),
    stop() {
      stopped = true;
    },
  };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
