import { randomUUID } from 'node:crypto';
import { parseDuration } from '../core/duration.js';
import { ConfigError, LockTimeoutError } from '../core/errors.js';
import { hashId } from '../core/ids.js';
import { sleep } from '../core/timing.js';
import type { SessionContext } from './options.js';

export interface LockOptions {
  /** How long the lock is ours if we never release it (crash). Default 10s. */
  lease?: string | number;
  /** How long to wait for another holder before LockTimeoutError. Default 5s; 0 tries once. */
  wait?: string | number;
}

/** What the work under a lock receives. */
export interface LockContext {
  /**
   * Grows with every grant of this (session, name) lock. Pass it to downstream systems
   * that can refuse a stale holder: a holder that outlived its lease has a smaller token.
   */
  fencingToken: number;
}

export interface HeldLock extends LockContext {
  name: string;
  /** Gives the lock back (idempotent, never throws: a failed release lapses with the lease). */
  release(): Promise<void>;
}

const LOCK_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

/**
 * Takes the store lock (session, name), polling with jittered backoff until
 * `wait` runs out. Each call is its own owner, so two requests on one node
 * exclude each other exactly as requests on two nodes do.
 */
export async function acquireLock(
  c: SessionContext,
  sessionId: string,
  name: string,
  options: LockOptions = {},
): Promise<HeldLock> {
  const { store, stats, metrics } = c.services;
  if (!store.capabilities.locks) {
    throw new ConfigError(`session.lock() needs a store with locks; the ${store.kind} store has none`);
  }
  if (!LOCK_NAME.test(name)) {
    throw new ConfigError(
      `session lock name "${name.slice(0, 40)}" is not valid: use 1-100 letters, digits, "_", "-", "." or ":"`,
    );
  }
  const leaseMs = parseDuration(options.lease ?? '10s', 'lock lease');
  const waitMs = parseDuration(options.wait ?? '5s', 'lock wait');
  if (leaseMs < 1) throw new ConfigError('lock lease must be at least 1 ms');
  const owner = `${c.config.nodeId}:${randomUUID()}`;
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    const grant = await store.acquireLock(sessionId, name, owner, leaseMs);
    const waited = Date.now() - started;
    if (grant) {
      stats.lockAcquired += 1;
      if (attempt > 0) stats.lockWaited += 1;
      stats.lockWaitMs += waited;
      metrics?.lockWaits.inc({ outcome: attempt > 0 ? 'acquired-after-wait' : 'acquired' });
      return held(c, sessionId, name, owner, grant.fencingToken);
    }
    if (waited >= waitMs) {
      stats.lockTimeouts += 1;
      stats.lockWaitMs += waited;
      metrics?.lockWaits.inc({ outcome: 'timeout' });
      throw new LockTimeoutError(
        `session lock "${name}" is held by another request; gave up after waiting ${waited} ms (wait: ${waitMs} ms). Retry the request, or raise \`wait\` if the work under this lock usually takes longer.`,
      );
    }
    // Equal jitter: never a busy loop, and racing waiters spread out rather than poll in step.
    const backoff = Math.min(200, 10 * 2 ** attempt);
    await sleep(Math.min(waitMs - waited, backoff / 2 + Math.random() * (backoff / 2)));
  }
}

function held(c: SessionContext, sessionId: string, name: string, owner: string, fencingToken: number): HeldLock {
  let released: Promise<void> | undefined;
  return {
    name,
    fencingToken,
    release() {
      released ??= c.services.store.releaseLock(sessionId, name, owner).catch((err: unknown) => {
        c.services.stats.lockReleaseFailures += 1;
        c.services.logger.warn(
          { session: hashId(sessionId), lock: name, err },
          'session lock release failed; it lapses at the end of its lease',
        );
      });
      return released;
    },
  };
}
