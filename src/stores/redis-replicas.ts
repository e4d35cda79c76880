import type { Cluster, Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { metrics } from '../core/metrics.js';

/**
 * Redis replicates asynchronously: it answers a write before any replica has it, so a primary that
 * dies right after answering can take the write with it when a replica is promoted. With
 * `waitForReplicas`, each session write is followed by `WAIT <replicas> <timeoutMs>` on the same
 * connection: the store answers once that many replicas have the write, or the timeout passed.
 * The window shrinks from the replication lag to "the primary died within one replica round trip
 * of the write and before it reached a replica", at one replica round trip per write. After a
 * timeout, writes are answered unconfirmed, as the timed-out one was, until the primary lists
 * enough connected replicas again.
 * (WAIT does not make Redis strongly consistent: a write confirmed by a replica that is not the
 * one promoted can still be lost.)
 */
export interface ReplicaWait {
  /** How many replicas must have the write. */
  replicas: number;
  /** How long to wait for them before answering anyway (the write is applied on the primary). */
  timeoutMs: number;
}

/**
 * `waitForReplicas` from the options, or from the URL's `?waitReplicas=N&waitTimeout=100ms`; checked
 * before any connection is opened, so a bad value leaves nothing to clean up.
 */
export function replicaWaitOf(
  option: ReplicaWait | undefined,
  url: string | undefined,
  given: Redis | Cluster | undefined,
): ReplicaWait | undefined {
  const query = new URLSearchParams(/\?([^#]*)/.exec(url ?? '')?.[1] ?? '');
  // A duration with its unit, as every duration read from configuration: "100" could be ms or s.
  const fromUrl = query.has('waitReplicas')
    ? {
        replicas: Number(query.get('waitReplicas')),
        timeoutMs: parseDuration(query.get('waitTimeout') ?? '100ms', 'the waitTimeout in the store URL'),
      }
    : undefined;
  const wait = option ?? fromUrl;
  if (!wait) return undefined;
  if (given?.isCluster || /^rediss?\+cluster:/i.test(url ?? '')) {
    // WAIT names no key, so a cluster client cannot send it to the primary that took the write.
    throw new ConfigError(
      'redis store: waitReplicas works with one primary (redis:// or redis+sentinel://), not with Redis Cluster; remove it',
    );
  }
  if (!Number.isInteger(wait.replicas) || wait.replicas < 1 || wait.replicas > 16) {
    throw new ConfigError(
      `redis store: waitReplicas must be an integer from 1 to 16 (got ${String(wait.replicas)}), e.g. ?waitReplicas=1`,
    );
  }
  if (!Number.isInteger(wait.timeoutMs) || wait.timeoutMs < 1 || wait.timeoutMs > 10_000) {
    throw new ConfigError(
      `redis store: waitTimeout must be from 1ms to 10s (got ${String(wait.timeoutMs)} ms), e.g. &waitTimeout=100ms`,
    );
  }
  return wait;
}

/**
 * After a WAIT that timed out, writes are answered without waiting until the primary lists enough
 * connected replicas again (ROLE, asked at most this often, does not block). WAIT blocks the
 * connection it is sent on, reads included: with the replica gone (promoted away, cut off) every
 * WAIT would hold every other command for the whole timeout.
 */
export const REPLICA_RECHECK_MS = 1000;

/**
 * A function to call after each write, or undefined when no replica is waited for. Writes that end
 * while a WAIT is out share the next one (a WAIT covers every write the connection sent before it),
 * so at most one WAIT is out and one queued, whatever the write rate.
 */
export function replicaConfirmer(
  wait: ReplicaWait | undefined,
  client: Redis | Cluster,
  call: <T>(what: string, op: () => Promise<T>) => Promise<T>,
  registry: Registry | null,
): ((what: string) => Promise<void>) | undefined {
  if (!wait) return undefined;
  const primary = client as Redis;
  const waits = registry ? metrics(registry).replicaWaits : undefined;
  let degraded = false;
  let checkedAt = 0;
  let sending = false;
  let queued: Array<{ what: string; done: (acked: number | Error) => void }> = [];
  const flush = async () => {
    sending = true;
    for (let round = 0; queued.length > 0 && round < 1_000_000; round++) {
      const batch = queued;
      queued = [];
      const what = `${batch[0]?.what} (WAIT)`;
      const acked = await call(what, () => primary.call('WAIT', wait.replicas, wait.timeoutMs)).then(Number, (e) =>
        e instanceof Error ? e : new Error(String(e)),
      );
      if (typeof acked === 'number' && acked < wait.replicas) {
        degraded = true;
        checkedAt = Date.now();
      }
      for (const w of batch) w.done(acked);
    }
    sending = false;
  };
  /** ROLE on a primary: ['master', offset, [[host, port, offset], …]]. */
  const recheck = () => {
    checkedAt = Date.now();
    call('replica check (ROLE)', () => primary.call('ROLE')).then(
      (role) => {
        const replicas = Array.isArray(role) && Array.isArray(role[2]) ? role[2].length : 0;
        if (Array.isArray(role) && role[0] === 'master' && replicas >= wait.replicas) degraded = false;
      },
      () => {},
    );
  };
  return async (what) => {
    if (degraded) {
      if (Date.now() - checkedAt >= REPLICA_RECHECK_MS) recheck();
      waits?.inc({ outcome: 'skipped' });
      return;
    }
    const acked = await new Promise<number | Error>((done) => {
      queued.push({ what, done });
      if (!sending) void flush();
    });
    if (acked instanceof Error) throw acked;
    waits?.inc({ outcome: acked >= wait.replicas ? 'confirmed' : 'timeout' });
  };
}
