import {
  type ClaimOptions,
  type CommitOptions,
  type CommitResult,
  type EndedSession,
  type EndReason,
  endsAt,
  expiryReason,
  isLive,
  type LockGrant,
  type SessionDelta,
  type SessionMeta,
  type SessionStore,
  type StoredSession,
  slide,
} from './contract.js';
import { applyDelta } from './delta.js';
import { withLifecycle } from './lifecycle.js';

interface Entry {
  session: StoredSession;
  /** Set once the session has ended (destroyed or expired and claimed); it then only awaits its handler. */
  ended: EndReason | null;
  claim: { until: number; attempt: number } | null;
}

/**
 * Single-process store: the reference implementation of the contract, for tests
 * and one-process apps. Nothing is shared between processes.
 */
export function memoryStore(): SessionStore {
  const entries = new Map<string, Entry>();
  const locks = new Map<string, { owner: string; until: number; token: number }>();
  let fencing = 0;

  const live = (id: string, now: number): Entry | undefined => {
    const e = entries.get(id);
    return e && e.ended === null && isLive(e.session.meta, now) ? e : undefined;
  };
  /** Drops a session and its locks for good (acked, or rotated away). */
  const forget = (id: string) => {
    entries.delete(id);
    for (const key of locks.keys()) if (key.startsWith(`${id}\0`)) locks.delete(key);
  };
  const clone = (s: StoredSession): StoredSession => ({
    id: s.id,
    meta: { ...s.meta },
    attributes: { ...s.attributes },
  });

  return withLifecycle({
    kind: 'memory',
    capabilities: { lifecycle: true, userIndex: true, locks: true, shared: false },

    async create(session) {
      if (entries.has(session.id)) return false;
      entries.set(session.id, { session: clone(session), ended: null, claim: null });
      return true;
    },

    async load(id, now) {
      const e = live(id, now);
      return e ? clone(e.session) : null;
    },

    async loadIfChanged(id, now, knownRev) {
      const e = live(id, now);
      if (!e) return null;
      if (e.session.meta.rev === knownRev) return { status: 'unchanged', meta: { ...e.session.meta } };
      return { status: 'changed', session: clone(e.session) };
    },

    async commit(id: string, delta: SessionDelta, options: CommitOptions): Promise<CommitResult> {
      const e = live(id, options.now);
      if (!e) return { status: 'gone' };
      const s = e.session;
      if (options.expectedRev !== undefined && options.expectedRev !== s.meta.rev) {
        return { status: 'conflict', rev: s.meta.rev };
      }
      const applied = applyDelta(s.attributes, s.meta.userId, delta);
      if ('status' in applied) return applied;
      s.attributes = applied.attributes;
      s.meta.userId = applied.userId;
      s.meta.rev += 1;
      s.meta.lastSeenAt = options.now;
      moveDeadlines(s.meta, slide(s.meta, delta.lifetime, options.now, options.idleDeadline));
      return { status: 'ok', rev: s.meta.rev, values: applied.values };
    },

    async touch(id, now, idleDeadline) {
      const e = live(id, now);
      if (!e) return false;
      e.session.meta.lastSeenAt = now;
      moveDeadlines(e.session.meta, slide(e.session.meta, undefined, now, idleDeadline));
      return true;
    },

    async destroy(id, now, options) {
      const e = live(id, now);
      if (!e) return false;
      // Rotation moved the session to a new id: the old entry goes with no end to claim.
      if (options?.silent) forget(id);
      else e.ended = 'destroyed';
      return true;
    },

    async listByUser(userId, now) {
      return [...entries.values()]
        .filter((e) => e.ended === null && e.session.meta.userId === userId && isLive(e.session.meta, now))
        .map((e) => clone(e.session));
    },

    async claimEnded({ now, limit, leaseMs }: ClaimOptions): Promise<EndedSession[]> {
      const out: EndedSession[] = [];
      for (const e of entries.values()) {
        if (out.length >= limit) break;
        const due = e.ended !== null || endsAt(e.session.meta) <= now;
        if (!due || (e.claim && e.claim.until > now)) continue;
        e.ended ??= expiryReason(e.session.meta);
        e.claim = { until: now + leaseMs, attempt: (e.claim?.attempt ?? 0) + 1 };
        out.push({ snapshot: clone(e.session), reason: e.ended, attempt: e.claim.attempt });
      }
      return out;
    },

    async ackEnded(id) {
      forget(id);
    },

    async acquireLock(id, name, owner, leaseMs): Promise<LockGrant | null> {
      const key = `${id}\0${name}`;
      const now = Date.now();
      const held = locks.get(key);
      if (held && held.until > now && held.owner !== owner) return null;
      fencing += 1;
      locks.set(key, { owner, until: now + leaseMs, token: fencing });
      return { fencingToken: fencing };
    },

    async releaseLock(id, name, owner) {
      const key = `${id}\0${name}`;
      if (locks.get(key)?.owner === owner) locks.delete(key);
    },

    async ping() {},
    async close() {
      entries.clear();
      locks.clear();
    },
  } satisfies SessionStore);
}

function moveDeadlines(meta: SessionMeta, to: ReturnType<typeof slide>): void {
  meta.idleDeadline = to.idleDeadline;
  meta.absoluteDeadline = to.absoluteDeadline;
  if (to.idleMs === undefined) delete meta.idleMs;
  else meta.idleMs = to.idleMs;
}
