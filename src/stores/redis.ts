import type { Cluster, Redis } from 'ioredis';
import { DeadlineQueue } from '../core/deadlines.js';
import { ConfigError, StoreUnavailableError } from '../core/errors.js';
import { registryOf } from '../core/metrics.js';
import { connectionRefused, failureDetail, openRedis, parseRedisUrl } from '../core/redis-client.js';
import { NotSentError, ReadyGate, type ReadyWaiter } from '../core/redis-ready.js';
import { isNoScript, type LuaScript, sendScript } from '../core/redis-script.js';
import { isUnknownMasterName, redisAdvice } from '../core/redis-sentinel-name.js';
import { writesPerTurn } from '../core/redis-writes.js';
import { redact } from '../core/url.js';
import {
  type ClaimOptions,
  type CommitOptions,
  type CommitResult,
  type EndedSession,
  type EndReason,
  isLive,
  type SessionDelta,
  type SessionStore,
  type StoredSession,
  type StoreOptions,
} from './contract.js';
import { withLifecycle } from './lifecycle.js';
import { type ReplicaWait, replicaConfirmer, replicaWaitOf } from './redis-replicas.js';
import {
  ACK,
  CLAIM,
  COMMIT,
  CREATE,
  DESTROY,
  LOAD_IF_CHANGED,
  LOCK,
  ROTATE_AWAY,
  TOUCH,
  UNLOCK,
  USER_ADD,
} from './redis-scripts.js';
import {
  commitArgs,
  commitOutcome,
  commitRefusal,
  commitSuccess,
  fnv1a,
  pairsToHash,
  parseSession,
} from './redis-session.js';

export interface RedisStoreOptions extends StoreOptions {
  /** `redis://…`, `rediss://…`, `redis+cluster://h1:p1,h2:p2` or `redis+sentinel://s1:p1,s2:p2/name`; ignored when `client` is given. */
  url?: string;
  /** An existing connection (Redis or Cluster). The store never closes it. */
  client?: Redis | Cluster;
  /** First part of every key; default "shoal". */
  keyPrefix?: string;
  /**
   * Expiry-index shards; each has its own hash tag, so a cluster spreads them over nodes.
   * Every node must use the same value, and changing it strands existing sessions. Default 16.
   */
  buckets?: number;
  /** How long ended sessions' data outlives their end, for the end handler to read. Default 1 hour. */
  graceMs?: number;
  /** Answer each write once this many replicas have it (WAIT); also `?waitReplicas=1&waitTimeout=100ms`. See redis-replicas.ts. */
  waitForReplicas?: ReplicaWait;
}

/** The empty KEYS and ARGV of a call that is not a script. */
const NO_KEYS: string[] = [];

/** The session in a HGETALL reply, if it may still be served at `now`. */
function liveSession(id: string, hash: Record<string, string>, now: number): StoredSession | null {
  const session = parseSession(id, hash);
  return session && !hash['m:ended'] && isLive(session.meta, now) ? session : null;
}

/**
 * ioredis's own command timeout (the connection's `commandTimeout`, the same timeoutMs) counts from when a
 * command is written; the store's deadline, from when the call is made, usually comes first. When
 * ioredis's comes first, the caller is told the same thing.
 */
function isCommandTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Command timed out';
}

const META_FIELDS = [
  'm:created',
  'm:seen',
  'm:idle',
  'm:abs',
  'm:user',
  'm:rev',
  'm:client',
  'm:life',
  'm:ended',
] as const;

/**
 * What to do when a call failed. A refused connection is a Redis that is not running or a URL that
 * names the wrong host or port: more time would not help. Otherwise Redis may only be slow.
 */
function storeAdvice(lastError: Error | undefined): string {
  return connectionRefused(lastError)
    ? 'Start Redis there, or correct the host and port in the store URL'
    : 'Check that Redis is running and reachable, or allow it more time with ?timeout= on the store URL (e.g. ?timeout=5s)';
}

/**
 * Redis / Valkey store: one hash per session (field per attribute), every mutation one
 * Lua script, a per-bucket sorted set as the expiry index, a set per user. Works on
 * Redis Cluster and on managed Redis (no CONFIG, KEYS, SCAN or keyspace notifications).
 */
export async function redisStore(options: RedisStoreOptions): Promise<SessionStore> {
  const ns = options.namespace ?? 'session';
  const prefix = options.keyPrefix ?? 'shoal';
  const buckets = options.buckets ?? 16;
  const timeoutMs = options.timeoutMs ?? 2000;
  const graceMs = options.graceMs ?? 3_600_000;
  if (/[{}]/.test(ns + prefix)) throw new ConfigError('redis store: namespace and keyPrefix must not contain { or }');
  if (!Number.isInteger(buckets) || buckets < 1) throw new ConfigError('redis store: buckets must be an integer >= 1');
  const where = options.client ? 'the given client' : redact(options.url ?? 'redis://127.0.0.1:6379');
  const replicaWait = replicaWaitOf(options.waitForReplicas, options.url, options.client);
  const registry = registryOf(options.metrics);

  let client: Redis | Cluster;
  const owned = !options.client;
  let lastError: Error | undefined;
  if (options.client) client = options.client;
  else {
    if (!options.url) throw new ConfigError('redis store: pass `url` (redis://host:6379) or an ioredis `client`');
    const remember = (err: Error) => {
      lastError = err;
    };
    // A Cluster's commands go out one write per node and turn through auto-pipelining; one server's
    // (or Sentinel's primary's) are corked per turn below, which costs far less.
    const cluster = parseRedisUrl(options.url).kind === 'cluster';
    client = await openRedis(
      options.url,
      'The Redis session store',
      timeoutMs,
      remember,
      cluster ? { enableAutoPipelining: true } : {},
    );
  }
  // Commands issued in one event-loop turn go out in one write: a write syscall per command was
  // the largest single cost of a session request under load.
  const batch = writesPerTurn(client);

  const failed = (what: string, err: unknown): StoreUnavailableError =>
    new StoreUnavailableError(
      'redis',
      `${what} failed at ${where}: ${failureDetail(err, lastError)}. ${redisAdvice(lastError, storeAdvice(lastError))}.`,
      { cause: err },
    );
  /**
   * Every backend call goes through here: bounded in time from when it is made (the EVAL after a
   * NOSCRIPT included), failures become StoreUnavailableError. One promise per call and one timer
   * for all of them (DeadlineQueue), no async frame around it: a session request makes one or two.
   */
  const deadlines = new DeadlineQueue(timeoutMs);
  const noAnswer = () => new Error(`no answer within ${timeoutMs} ms`);
  const notConnected = () => new NotSentError(`not connected within ${timeoutMs} ms, so not sent`);
  const gate = new ReadyGate(client, isUnknownMasterName);
  /** Whether a command sent now goes out on the connection, not into ioredis's offline queue (see ReadyGate). */
  const sendable = (): boolean => client.status === 'ready';
  /**
   * Answers a call within its deadline: `pending` is the command sent, or, when the connection was not
   * ready, what sends it, which waits at the gate within the same deadline (never sent once it passed).
   */
  const bounded = <T, R = T>(
    what: string,
    pending: Promise<T> | (() => Promise<T>),
    script: LuaScript | null,
    keys: string[],
    args: (string | number)[],
    /** Reads the answer, here rather than in a further then(): one promise and one turn less per call. */
    read?: (answer: T) => R,
  ): Promise<R> =>
    new Promise<R>((resolve, reject) => {
      let waiting: ReadyWaiter | null = null;
      const deadline = deadlines.add(() => {
        if (waiting) gate.cancel(waiting);
        reject(failed(what, waiting ? notConnected() : noAnswer()));
      });
      let fallback = script;
      const settled = (value: T) => {
        deadlines.settle(deadline);
        if (!read) {
          resolve(value as unknown as R);
          return;
        }
        let answer: R;
        try {
          answer = read(value);
        } catch (err) {
          reject(err);
          return;
        }
        resolve(answer);
      };
      const refused = (err: unknown) => {
        // Script cache flushed or a fresh server (failover): send the source once, same deadline; only on
        // a ready connection, or the EVAL could wait in ioredis's queue past the deadline.
        if (fallback && isNoScript(err) && sendable()) {
          const source = fallback;
          fallback = null;
          let again: Promise<T>;
          try {
            again = sendScript(client, source, keys, args, true) as Promise<T>;
          } catch (e) {
            refused(e);
            return;
          }
          again.then(settled, refused);
          return;
        }
        deadlines.settle(deadline);
        reject(failed(what, isCommandTimeout(err) ? noAnswer() : err));
      };
      if (typeof pending !== 'function') {
        pending.then(settled, refused);
        return;
      }
      const send = pending;
      waiting = {
        send: () => {
          waiting = null;
          let sent: Promise<T>;
          try {
            batch();
            sent = send();
          } catch (err) {
            refused(err);
            return;
          }
          sent.then(settled, refused);
        },
        fail: (err) => {
          waiting = null;
          refused(err);
        },
      };
      gate.wait(waiting);
    });
  const call = <T>(what: string, op: () => Promise<T>): Promise<T> => {
    if (!sendable()) return bounded(what, op, null, NO_KEYS, NO_KEYS);
    let pending: Promise<T>;
    try {
      batch();
      pending = op();
    } catch (err) {
      return Promise.reject(failed(what, err));
    }
    return bounded(what, pending, null, NO_KEYS, NO_KEYS);
  };
  const run = <R = unknown>(
    what: string,
    script: LuaScript,
    keys: string[],
    args: (string | number)[],
    read?: (answer: unknown) => R,
  ): Promise<R> => {
    if (!sendable())
      return bounded(what, () => sendScript(client, script, keys, args, false), script, keys, args, read);
    let pending: Promise<unknown>;
    try {
      batch();
      pending = sendScript(client, script, keys, args, false);
    } catch (err) {
      return Promise.reject(failed(what, err));
    }
    return bounded(what, pending, script, keys, args, read);
  };
  const replicated = replicaConfirmer(replicaWait, client, call, registry);

  const bucketOf = (id: string): number => fnv1a(id) % buckets;
  // Every key of a bucket starts with its tag: made once per bucket, not on every call.
  const tags = Array.from({ length: buckets }, (_, b) => `${prefix}:{${ns}:${b}}`);
  const dueKeys = tags.map((t) => `${t}:due`);
  const sessionBases = tags.map((t) => `${t}:s:`);
  const tag = (bucket: number) => tags[bucket] as string;
  const hashKey = (bucket: number, id: string) => `${sessionBases[bucket] as string}${id}`;
  const sessionKey = (id: string) => hashKey(bucketOf(id), id);
  const dueKey = (bucket: number) => dueKeys[bucket] as string;
  /** KEYS of the scripts on one session: its hash and its bucket's expiry index. */
  const hashAndDue = (id: string): string[] => {
    const b = bucketOf(id);
    return [hashKey(b, id), dueKey(b)];
  };
  const userKey = (userId: string) => `${prefix}:${ns}:u:{${userId}}`;
  // Index before data: a stale member is filtered out on read, a missing one would hide a session.
  const indexUser = (userId: string, id: string, until: number) =>
    run('user index', USER_ADD, [userKey(userId)], [id, Math.max(1, Math.ceil(until + graceMs - Date.now()))]);

  /** A commit that (re)indexes its user, moves its lifetime, or waits for replicas. */
  const commitIndexed = async (id: string, delta: SessionDelta, options: CommitOptions): Promise<CommitResult> => {
    if (typeof delta.userId === 'string') await indexUser(delta.userId, id, options.idleDeadline);
    const reply = (await run('commit', COMMIT, hashAndDue(id), commitArgs(id, delta, options, graceMs))) as (
      | string
      | number
    )[];
    const refused = commitRefusal(reply);
    if (refused) return refused;
    // The set must outlive the session's absolute deadline, known only now (a new lifetime may have moved it).
    const user = typeof delta.userId === 'string' ? delta.userId : String(reply[3] ?? '');
    if (user !== '') await indexUser(user, id, Number(reply[2]));
    const result = commitSuccess(reply);
    await replicated?.('commit');
    return result;
  };

  return withLifecycle({
    kind: 'redis',
    capabilities: { lifecycle: true, userIndex: true, locks: true, shared: true },

    async create(session) {
      const { id, meta } = session;
      const end = Math.min(meta.idleDeadline, meta.absoluteDeadline);
      const fields: string[] = [];
      for (const [k, v] of Object.entries(session.attributes)) fields.push(`a:${k}`, v);
      fields.push('m:created', String(meta.createdAt), 'm:seen', String(meta.lastSeenAt));
      fields.push(
        'm:idle',
        String(meta.idleDeadline),
        'm:abs',
        String(meta.absoluteDeadline),
        'm:rev',
        String(meta.rev),
      );
      if (meta.userId !== null) fields.push('m:user', meta.userId);
      if (meta.client !== undefined) fields.push('m:client', meta.client);
      if (meta.idleMs !== undefined) fields.push('m:life', String(meta.idleMs));
      if (meta.userId !== null) await indexUser(meta.userId, id, meta.absoluteDeadline);
      const args = [id, end, end + graceMs, Date.now() - graceMs, ...fields];
      const created = (await run('create', CREATE, hashAndDue(id), args)) === 1;
      // Again after: a concurrent listByUser may have dropped the member while the hash did not exist yet.
      if (created && meta.userId !== null) await indexUser(meta.userId, id, meta.absoluteDeadline);
      if (created) await replicated?.('create');
      return created;
    },

    // Not an async function: a session read is this one call, its answer read as it settles, no async frame around it.
    // Sent here rather than through call(): on a ready connection that takes no closure to make the command.
    load(id, now) {
      const read = (hash: Record<string, string>) => liveSession(id, hash, now);
      if (!sendable()) return bounded('load', () => client.hgetall(sessionKey(id)), null, NO_KEYS, NO_KEYS, read);
      let pending: Promise<Record<string, string>>;
      try {
        batch();
        pending = client.hgetall(sessionKey(id));
      } catch (err) {
        return Promise.reject(failed('load', err));
      }
      return bounded('load', pending, null, NO_KEYS, NO_KEYS, read);
    },

    async loadIfChanged(id, now, knownRev) {
      const reply = (await run('loadIfChanged', LOAD_IF_CHANGED, [sessionKey(id)], [now, knownRev])) as
        | null
        | ['changed', string[]]
        | ['unchanged', ...(string | null)[]];
      if (reply === null) return null;
      if (reply[0] === 'changed') {
        const session = parseSession(id, pairsToHash(reply[1]));
        // The script already refused ended and expired sessions; only a hash without m:rev is left.
        return session ? { status: 'changed', session } : null;
      }
      const [, rev, idle, abs, created, seen, user, client, life] = reply;
      const hash: Record<string, string> = {
        'm:rev': String(rev),
        'm:idle': String(idle),
        'm:abs': String(abs),
        'm:created': String(created),
        'm:seen': String(seen),
      };
      if (user != null) hash['m:user'] = user;
      if (client != null) hash['m:client'] = client;
      if (life != null) hash['m:life'] = life;
      const meta = parseSession(id, hash)?.meta;
      return meta ? { status: 'unchanged', meta } : null;
    },

    commit(id, delta, options): Promise<CommitResult> {
      // Most commits index no user, keep their lifetime and wait for no replica: one script, its
      // reply read as it settles, no async frame.
      if (typeof delta.userId === 'string' || delta.lifetime || replicated) return commitIndexed(id, delta, options);
      return run('commit', COMMIT, hashAndDue(id), commitArgs(id, delta, options, graceMs), commitOutcome);
    },

    async touch(id, now, idleDeadline) {
      const args = [id, now, idleDeadline, graceMs];
      return (await run('touch', TOUCH, hashAndDue(id), args)) === 1;
    },

    async destroy(id, now, options) {
      const destroyed = options?.silent
        ? (await run('destroy', ROTATE_AWAY, hashAndDue(id), [id, now])) === 1
        : (await run('destroy', DESTROY, hashAndDue(id), [id, now, graceMs])) === 1;
      // A logout (or a rotated-away id) a failover forgot would sign the user back in.
      if (destroyed) await replicated?.('destroy');
      return destroyed;
    },

    async listByUser(userId, now) {
      const key = userKey(userId);
      const ids = await call('listByUser', () => client.smembers(key));
      const rows = await Promise.all(
        ids.map((id) => call('listByUser', () => client.hmget(sessionKey(id), ...META_FIELDS))),
      );
      const out: StoredSession[] = [];
      const stale: string[] = [];
      ids.forEach((id, i) => {
        const row = rows[i] ?? [];
        const hash = Object.fromEntries(META_FIELDS.flatMap((f, j) => (row[j] == null ? [] : [[f, row[j]]])));
        const session = parseSession(id, hash);
        // Only sessions that can never come back are dropped; one that moved to another
        // user stays until it ends, so a racing commit moving it back is never lost.
        if (!session || hash['m:ended']) stale.push(id);
        else if (session.meta.userId === userId && isLive(session.meta, now)) out.push(session);
      });
      if (stale.length > 0) await call('listByUser', () => client.srem(key, ...stale));
      return out;
    },

    async claimEnded({ now, limit, leaseMs }: ClaimOptions): Promise<EndedSession[]> {
      // Every bucket at once, each with its share of the limit: a sweep costs the same whether Redis
      // is next door or a zone away. A full share tells the sweeper to go again.
      const share = Math.max(1, Math.ceil(limit / buckets));
      const claim = (keys: string[], bases: string[]) =>
        run('claimEnded', CLAIM, keys, [now, share, leaseMs, graceMs, ...bases]) as Promise<(string | number)[][]>;
      // A single server holds every bucket: one script. A Cluster spreads them over slots: one
      // script per bucket, pipelined into one round trip per node.
      const replies = client.isCluster
        ? await Promise.all(dueKeys.map((due, b) => claim([due], [sessionBases[b] as string])))
        : [await claim(dueKeys, sessionBases)];
      const out: EndedSession[] = [];
      for (const reply of replies) {
        for (const [id, reason, attempt, ...flat] of reply) {
          const snapshot = parseSession(String(id), pairsToHash(flat));
          if (snapshot) out.push({ snapshot, reason: String(reason) as EndReason, attempt: Number(attempt) });
        }
      }
      return out;
    },

    async ackEnded(id) {
      await run('ackEnded', ACK, hashAndDue(id), [id]);
    },

    async acquireLock(id, name, owner, leaseMs) {
      const t = tag(bucketOf(id));
      const token = await run('acquireLock', LOCK, [`${t}:l:${id}:${name}`, `${t}:fence`], [owner, leaseMs]);
      return token === null ? null : { fencingToken: Number(token) };
    },

    async releaseLock(id, name, owner) {
      await run('releaseLock', UNLOCK, [`${tag(bucketOf(id))}:l:${id}:${name}`], [owner]);
    },

    async ping() {
      await call('ping', () => client.ping());
    },

    async close() {
      gate.close();
      if (!owned) return;
      try {
        await call('close', () => client.quit());
      } catch {
        // Unreachable: drop the socket and stop reconnecting instead of waiting.
      } finally {
        client.disconnect();
      }
    },
  } satisfies SessionStore);
}
