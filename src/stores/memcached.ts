import { ConfigError, ConflictError, StoreUnavailableError } from '../core/errors.js';
import { hashId } from '../core/ids.js';
import { keyedLanes } from '../core/lanes.js';
import { fullJitter, sleep } from '../core/timing.js';
import {
  type CommitResult,
  endsAt,
  isLive,
  type LockGrant,
  type SessionMeta,
  type SessionStore,
  type StoreOptions,
  slide,
} from './contract.js';
import { applyDelta } from './delta.js';
import { withLifecycle } from './lifecycle.js';
import { connectMemcached, itemKey } from './memcached-protocol.js';

export interface MemcachedStoreOptions extends StoreOptions {
  /** memcached://host:11211[,host2:11211] (ElastiCache: list the node endpoints). */
  url: string;
}

/** One item per session. `ended` marks a tombstone: destroyed, only kept to refuse the id. */
interface SessionDoc {
  meta: SessionMeta;
  attributes: Record<string, string>;
  ended?: 'destroyed';
}

/** One item per (session, lock name); kept after release so the fencing counter carries on. */
interface LockDoc {
  owner: string | null;
  until: number;
  token: number;
}

/** What one read-modify-write attempt decided: the result, and the item to write first (if any). */
interface Step<T> {
  result: T;
  write?: { value: string; untilMs: number };
}

/** Items outlive their deadline a little: node clocks disagree slightly, and load() checks deadlines anyway. */
const GRACE_MS = 60_000;
/** A tombstone only has to outlast requests already in flight with the old id. */
const TOMBSTONE_MS = 3_600_000;
/** Keeps a released lock's fencing counter around for later holders. */
const LOCK_KEEP_MS = 86_400_000;
const MAX_CAS_ATTEMPTS = 100;
const BACKOFF_CAP_MS = 20;

/**
 * Session store on memcached (e.g. AWS ElastiCache): one JSON item per session,
 * commits as a gets → apply → cas loop. Memcached cannot list keys and may evict
 * items, so there is no expiry index (no onSessionEnd for expiry) and no per-user
 * index: see docs/stores/memcached.md.
 */
export async function memcachedStore(options: MemcachedStoreOptions): Promise<SessionStore> {
  const { url, namespace: ns = 'session', timeoutMs = 2000 } = options;
  const mc = await connectMemcached(url, timeoutMs);
  const sessionKey = (id: string) => itemKey(`shoal:${ns}:${id}`);
  const lockKey = (id: string, name: string) => itemKey(`shoal:${ns}:${id}:lock:${name}`);

  // Writers to the same item from this process take turns: they would only fail
  // each other's CAS, and 100 concurrent commits would burn ~5000 round trips.
  const lanes = keyedLanes<string>();
  const serial = <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const failuresAtEnqueue = mc.failures;
    return lanes(key, async (queued) => {
      // The connection broke while this waited: fail now rather than wait out another timeout.
      if (queued && mc.failures !== failuresAtEnqueue) {
        throw new StoreUnavailableError('memcached', 'the connection failed while this call was queued; retry.');
      }
      return fn();
    });
  };

  /** Read-modify-write of one item under CAS; a missing item is created with add when `plan` writes one. */
  const update = <T>(key: string, label: string, plan: (current: string | null) => Step<T>): Promise<T> =>
    serial(key, async () => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        if (attempt > 0) await sleep(fullJitter(BACKOFF_CAP_MS, attempt));
        const item = await mc.get(key);
        const { result, write } = plan(item?.value ?? null);
        if (!write) return result;
        const stored = item
          ? (await mc.casSet(key, write.value, write.untilMs, item.cas)) === 'ok'
          : await mc.add(key, write.value, write.untilMs);
        if (stored) return result;
        // Someone wrote (or the item expired) between the read and the write: re-read and re-decide.
      }
      throw new ConflictError(
        `memcached: ${label} changed under ${MAX_CAS_ATTEMPTS} compare-and-swap attempts in a row (too many concurrent writers); retry the request.`,
      );
    });

  /** The session if it may still be served at `now`. */
  const liveDoc = (text: string | null, now: number): SessionDoc | null => {
    if (text === null) return null;
    const doc = decode<SessionDoc>(text, 'session');
    return !doc.ended && isLive(doc.meta, now) ? doc : null;
  };
  const writeSession = (doc: SessionDoc) => ({ value: JSON.stringify(doc), untilMs: endsAt(doc.meta) + GRACE_MS });

  return withLifecycle({
    kind: 'memcached',
    // No key listing: nothing can find expired sessions or a user's sessions.
    capabilities: { lifecycle: false, userIndex: false, locks: true, shared: true },

    async create(session) {
      const doc: SessionDoc = { meta: session.meta, attributes: session.attributes };
      const { value, untilMs } = writeSession(doc);
      return mc.add(sessionKey(session.id), value, untilMs);
    },

    async load(id, now) {
      const item = await mc.get(sessionKey(id));
      const doc = liveDoc(item?.value ?? null, now);
      return doc ? { id, meta: doc.meta, attributes: doc.attributes } : null;
    },

    commit(id, delta, options) {
      return update(sessionKey(id), `session ${hashId(id)}`, (text): Step<CommitResult> => {
        const doc = liveDoc(text, options.now);
        if (!doc) return { result: { status: 'gone' } };
        const { rev } = doc.meta;
        if (options.expectedRev !== undefined && options.expectedRev !== rev) {
          return { result: { status: 'conflict', rev } };
        }
        const applied = applyDelta(doc.attributes, doc.meta.userId, delta);
        if ('status' in applied) return { result: applied };
        const meta = withDeadlines(
          { ...doc.meta, rev: rev + 1, lastSeenAt: options.now, userId: applied.userId },
          slide(doc.meta, delta.lifetime, options.now, options.idleDeadline),
        );
        return {
          result: { status: 'ok', rev: meta.rev, values: applied.values },
          write: writeSession({ meta, attributes: applied.attributes }),
        };
      });
    },

    // Meta lives in the session item, so a touch rewrites it; the CAS keeps it from undoing a concurrent commit.
    touch(id, now, idleDeadline) {
      return update(sessionKey(id), `session ${hashId(id)}`, (text): Step<boolean> => {
        const doc = liveDoc(text, now);
        if (!doc) return { result: false };
        const meta = withDeadlines({ ...doc.meta, lastSeenAt: now }, slide(doc.meta, undefined, now, idleDeadline));
        return { result: true, write: writeSession({ ...doc, meta }) };
      });
    },

    destroy(id, now) {
      return update(sessionKey(id), `session ${hashId(id)}`, (text): Step<boolean> => {
        const doc = liveDoc(text, now);
        if (!doc) return { result: false };
        // Replaced, not deleted: create() keeps refusing the id and no racing writer finds a gap.
        // A tombstone is never an end (memcached has none to claim), so rotation (`silent`) needs nothing else.
        const tombstone: SessionDoc = { meta: doc.meta, attributes: {}, ended: 'destroyed' };
        return { result: true, write: { value: JSON.stringify(tombstone), untilMs: Date.now() + TOMBSTONE_MS } };
      });
    },

    async listByUser() {
      throw new ConfigError(
        'memcached cannot list sessions (it has no key listing), so listSessions() and destroyAllForUser() are unavailable. ' +
          'Use SHOAL_STORE=redis://…, postgres://… or sqlite:… when the app needs them.',
      );
    },

    // Expired sessions simply age out of memcached; nothing can enumerate them for onSessionEnd.
    async claimEnded() {
      return [];
    },
    async ackEnded() {},

    acquireLock(id, name, owner, leaseMs) {
      return update(lockKey(id, name), `lock "${name}" of session ${hashId(id)}`, (text): Step<LockGrant | null> => {
        const now = Date.now();
        const held = text === null ? null : decode<LockDoc>(text, 'lock');
        if (held?.owner && held.owner !== owner && held.until > now) return { result: null };
        // Without a counter (first use, or evicted) start from the clock: above any earlier token.
        const token = held ? held.token + 1 : now * 1000;
        const doc: LockDoc = { owner, until: now + leaseMs, token };
        return {
          result: { fencingToken: token },
          write: { value: JSON.stringify(doc), untilMs: now + leaseMs + LOCK_KEEP_MS },
        };
      });
    },

    releaseLock(id, name, owner) {
      return update(lockKey(id, name), `lock "${name}" of session ${hashId(id)}`, (text): Step<void> => {
        const held = text === null ? null : decode<LockDoc>(text, 'lock');
        if (held?.owner !== owner) return { result: undefined };
        const doc: LockDoc = { owner: null, until: 0, token: held.token };
        return { result: undefined, write: { value: JSON.stringify(doc), untilMs: Date.now() + LOCK_KEEP_MS } };
      });
    },

    ping: () => mc.ping(),
    async close() {
      mc.close();
    },
  } satisfies SessionStore);
}

/** `meta` with the deadlines (and own idle length) a commit or touch worked out. */
function withDeadlines(meta: SessionMeta, to: ReturnType<typeof slide>): SessionMeta {
  const out: SessionMeta = { ...meta, idleDeadline: to.idleDeadline, absoluteDeadline: to.absoluteDeadline };
  if (to.idleMs === undefined) delete out.idleMs;
  else out.idleMs = to.idleMs;
  return out;
}

function decode<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new StoreUnavailableError(
      'memcached',
      `a ${what} item holds data shoal did not write; is another application using the same keys? Give shoal its own namespace or memcached.`,
      { cause: err },
    );
  }
}
