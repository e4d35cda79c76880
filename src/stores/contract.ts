import type { MetricsOption } from '../core/metrics.js';

/**
 * The session store contract. Every backend (memory, sqlite, redis, postgres,
 * memcached) implements it in one file and passes test/conformance/store.
 * Attribute names are user data: any string, `__proto__` and `constructor` included, is an
 * ordinary field (stores that apply a delta themselves use delta.ts). After close(), every
 * call rejects with StoreUnavailableError (lifecycle.ts); close() itself may be called again.
 *
 * Attribute values cross this boundary already encoded (JSON text, possibly
 * encrypted by the session layer): stores never interpret them, except for
 * `incr`, which requires the stored text to be a JSON number.
 */

/** Times are milliseconds since the epoch. */
export interface SessionMeta {
  createdAt: number;
  lastSeenAt: number;
  /** The session ends when `now >= idleDeadline` (slides on touch/commit). */
  idleDeadline: number;
  /** The session ends when `now >= absoluteDeadline`, whatever the activity. */
  absoluteDeadline: number;
  userId: string | null;
  /** Bumped by every commit that changes data; never by a touch. */
  rev: number;
  /** Short free-text summary of the client (user agent / IP) for listSessions(). */
  client?: string | undefined;
  /**
   * The session's own idle length (session.setLifetime), when it has one: commits and touches slide
   * `idleDeadline` to `now + idleMs`, whatever deadline the caller passes. Absent: the caller's (the
   * manager's idleTimeout). A record stored by an earlier version has none.
   */
  idleMs?: number | undefined;
}

export interface StoredSession {
  id: string;
  meta: SessionMeta;
  /** attribute name → encoded value */
  attributes: Record<string, string>;
}

/** Field-level change set. Applied in this order: del, set, incr. */
export interface SessionDelta {
  set?: Record<string, string>;
  del?: string[];
  /** attribute → amount; a missing attribute counts as 0; a non-number fails the commit */
  incr?: Record<string, number>;
  /** undefined = unchanged, null = clear */
  userId?: string | null;
  /** undefined = unchanged: gives the session a lifetime of its own (or back to the caller's). */
  lifetime?: LifetimeChange;
}

/** A session's lifetime as session.setLifetime() sets it; applied with the commit's other changes. */
export interface LifetimeChange {
  /** Stored as `meta.idleMs`, and the idle deadline slides by it from this commit on; null removes it. */
  idleMs: number | null;
  /** The absolute deadline becomes `createdAt + absoluteMs`. */
  absoluteMs: number;
}

export interface CommitOptions {
  now: number;
  /**
   * New idle deadline (a commit is activity), unless the session has its own idle length
   * (`meta.idleMs`): then `now + idleMs`. Never beyond absoluteDeadline's meaning: load still checks both.
   */
  idleDeadline: number;
  /** When given, apply only if the stored rev equals it (compare-and-swap). */
  expectedRev?: number;
}

export type CommitResult =
  /** `values` holds the encoded value after the commit of every key in `delta.incr`. */
  | { status: 'ok'; rev: number; values: Record<string, string> }
  | { status: 'conflict'; rev: number }
  /** The session is missing, destroyed, ended or past a deadline: nothing was written. */
  | { status: 'gone' }
  /** An incr target holds something that is not a JSON number: nothing was written. */
  | { status: 'not-a-number'; key: string };

/**
 * What loadIfChanged answers for a live session: only the meta when the stored rev is the one
 * the caller already holds (its attributes are then exactly the caller's copy), else the full record.
 */
export type ConditionalLoad =
  | { status: 'unchanged'; meta: SessionMeta }
  | { status: 'changed'; session: StoredSession };

export type EndReason = 'idle-timeout' | 'absolute-timeout' | 'destroyed';

export interface EndedSession {
  /** The last committed state. */
  snapshot: StoredSession;
  reason: EndReason;
  /** 1 for the first claim, 2 when a previous claimer's lease lapsed, … */
  attempt: number;
}

export interface ClaimOptions {
  now: number;
  limit: number;
  leaseMs: number;
  /** Identifies the claiming process (diagnostics only). */
  owner: string;
}

export interface StoreCapabilities {
  /** claimEnded/ackEnded work: the store can list what expired (memcached cannot). */
  lifecycle: boolean;
  /** listByUser/destroyAllForUser work. */
  userIndex: boolean;
  /** acquireLock/releaseLock work. */
  locks: boolean;
  /** Data is shared between processes (false for memory). */
  shared: boolean;
}

export interface LockGrant {
  /** Monotonic per (session, name): lets downstream systems reject a stale holder. */
  fencingToken: number;
}

export interface SessionStore {
  /** Backend name for logs and errors, e.g. "redis". */
  readonly kind: string;
  readonly capabilities: StoreCapabilities;
  /**
   * Where its sessions live (backend and namespace): two stores with the same value see the same
   * sessions. Set by createStore; absent for a store made otherwise (and for memory stores).
   */
  readonly sharedAs?: string;

  /** Inserts a new session. false when the id is already taken (live, ended or tombstoned). */
  create(session: StoredSession): Promise<boolean>;
  /** The session, or null when missing, destroyed, ended or `now` is past a deadline. */
  load(id: string, now: number): Promise<StoredSession | null>;
  /**
   * Optional (memcached keeps a session as one value and cannot skip sending it): load() in one
   * round trip, except that when the stored rev equals `knownRev` only the meta comes back.
   * Same liveness rules as load(): null when missing, destroyed, ended or past a deadline.
   * Backs the near cache (src/session/near-cache.ts), which serves its attributes only on "unchanged".
   */
  loadIfChanged?(id: string, now: number, knownRev: number): Promise<ConditionalLoad | null>;
  /** Applies a delta atomically: all of it or none; bumps rev by exactly 1; never recreates a destroyed session. */
  commit(id: string, delta: SessionDelta, options: CommitOptions): Promise<CommitResult>;
  /**
   * Slides the idle deadline to `idleDeadline` (to `now + meta.idleMs` when the session has its own
   * idle length) without touching data or rev. false when the session is gone.
   */
  touch(id: string, now: number, idleDeadline: number): Promise<boolean>;
  /**
   * Ends the session now (logout): load/commit refuse it from here on, on every node.
   * With lifecycle, the snapshot is kept until a sweeper has claimed and acked it (reason "destroyed").
   * false when it was already gone. `silent` (regenerate: rotation moves a session, it is not an end)
   * refuses the id just the same but removes it without an end: claimEnded never returns it, so the
   * session's one end is the one its new id gets later.
   */
  destroy(id: string, now: number, options?: { silent?: boolean }): Promise<boolean>;

  /** Live sessions of a user (attributes may be empty: callers need only meta). */
  listByUser(userId: string, now: number): Promise<StoredSession[]>;
  /**
   * Atomically claims up to `limit` sessions whose end is due (deadline passed, destroyed,
   * or a previous claim's lease lapsed). A claimed session is not returned again until its lease lapses.
   */
  claimEnded(options: ClaimOptions): Promise<EndedSession[]>;
  /** The end handler finished: drop the snapshot for good. */
  ackEnded(id: string): Promise<void>;

  /** null when another holder's lease is still running. */
  acquireLock(id: string, name: string, owner: string, leaseMs: number): Promise<LockGrant | null>;
  /** Releases only if `owner` still holds it. */
  releaseLock(id: string, name: string, owner: string): Promise<void>;

  /** Resolves when the backend answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  /** Releases connections; every call after it rejects with StoreUnavailableError. Idempotent. */
  close(): Promise<void>;
}

/** The data methods of a store (all but ping and close), for wrappers that treat each call alike. */
export const STORE_OPERATIONS = [
  'create',
  'load',
  'loadIfChanged',
  'commit',
  'touch',
  'destroy',
  'listByUser',
  'claimEnded',
  'ackEnded',
  'acquireLock',
  'releaseLock',
] as const;

/** Options every store factory accepts in addition to its own. */
export interface StoreOptions {
  /** Separates independent scopes (e.g. "session" and "client") in one backend. */
  namespace?: string;
  /** How long a backend call may take before it fails with StoreUnavailableError. */
  timeoutMs?: number;
  /**
   * Where the store counts what only it sees (redis: replica waits): by default the process registry
   * (`metricsRegistry()`), `{ registry }` a prom-client Registry of yours, `false` nowhere. Its calls
   * are counted by the session manager using it, by that manager's own `metrics` option.
   */
  metrics?: MetricsOption;
}

/** Whether a value is a shoal session store (what createStore returns), for options given from plain JavaScript. */
export function isSessionStore(value: unknown): value is SessionStore {
  const s = value as Partial<SessionStore> | null | undefined;
  return typeof s?.kind === 'string' && typeof s.commit === 'function' && typeof s.create === 'function';
}

/** Whether a session may still be served at `now`. */
export function isLive(meta: SessionMeta, now: number): boolean {
  return now < meta.idleDeadline && now < meta.absoluteDeadline;
}

/** Which deadline ended a session (the earlier one). */
export function expiryReason(meta: SessionMeta): EndReason {
  return meta.absoluteDeadline <= meta.idleDeadline ? 'absolute-timeout' : 'idle-timeout';
}

/** The time at which a live session ends if nothing happens. */
export function endsAt(meta: SessionMeta): number {
  return Math.min(meta.idleDeadline, meta.absoluteDeadline);
}

/**
 * The deadlines after a commit or touch at `now`: the session's own idle length when it has one
 * (or `change` gives one), else the caller's idle deadline; `change` also moves the absolute deadline.
 * For the stores that compute the new meta themselves; Redis and PostgreSQL do the same in the backend.
 */
export function slide(
  meta: Pick<SessionMeta, 'createdAt' | 'absoluteDeadline' | 'idleMs'>,
  change: LifetimeChange | undefined,
  now: number,
  idleDeadline: number,
): { idleMs: number | undefined; idleDeadline: number; absoluteDeadline: number } {
  const idleMs = change ? (change.idleMs ?? undefined) : meta.idleMs;
  return {
    idleMs,
    idleDeadline: idleMs === undefined ? idleDeadline : now + idleMs,
    absoluteDeadline: change ? meta.createdAt + change.absoluteMs : meta.absoluteDeadline,
  };
}

/** Parses a stored value for incr: a finite JSON number or undefined. */
export function asNumber(encoded: string | undefined): number | undefined {
  if (encoded === undefined) return 0;
  const n = Number(encoded);
  return encoded.trim() !== '' && Number.isFinite(n) ? n : undefined;
}
