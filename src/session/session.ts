import { ConflictError, SessionGoneError, SessionValueError } from '../core/errors.js';
import { newSessionId } from '../core/ids.js';
import type { CommitResult, SessionDelta, StoredSession } from '../stores/contract.js';
import { checkCommitSize, decodeValue, encodeValue } from './codec.js';
import { acquireLock, type HeldLock, type LockContext, type LockOptions } from './lock.js';
import type { NearCacheEntry } from './near-cache.js';
import {
  announceRevoked,
  type ResolvedSessionOptions,
  type SessionSchema,
  type SessionStartContext,
} from './options.js';

type State = 'unknown' | 'live' | 'missing' | 'destroyed';
type Key<T> = keyof T & string;

/** What the response must do with the session cookie. */
export type CookieAction = 'none' | 'set' | 'clear';

/**
 * One request's view of a session. Loads lazily (an untouched session costs no
 * store call), tracks changes per attribute — nested mutation of a value read
 * with get() included — and commits only what changed, as one atomic store
 * operation, so concurrent requests touching different keys never lose writes.
 */
export class Session<T extends SessionSchema = SessionSchema> {
  readonly #o: ResolvedSessionOptions<T>;
  readonly #ctx: SessionStartContext;
  #id: string | null;
  #state: State;
  #record: StoredSession | null = null;
  /** The near-cache entry #record's attributes belong to, if any (holds decrypted texts to reuse). */
  #cached: NearCacheEntry | null = null;
  #loading: Promise<StoredSession | null> | null = null;
  /** Values handed out by get(), with the text they were decoded from, to spot in-place mutation. */
  readonly #read = new Map<string, { value: unknown; original: string | undefined }>();
  readonly #set = new Map<string, unknown>();
  readonly #del = new Set<string>();
  #userId: string | null | undefined = undefined;
  #cookie: CookieAction;
  #committing: Promise<void> | null = null;

  constructor(
    options: ResolvedSessionOptions<T>,
    incomingId: string | null,
    rejectedCookie: boolean,
    ctx: SessionStartContext,
  ) {
    this.#o = options;
    this.#ctx = ctx;
    this.#id = incomingId;
    this.#state = incomingId ? 'unknown' : 'missing';
    this.#cookie = rejectedCookie ? 'clear' : 'none';
  }

  /** The session id once it exists (the cookie's, or a new one after the first write). */
  get id(): string | null {
    return this.#state === 'missing' || this.#state === 'destroyed' ? null : this.#id;
  }

  get cookieAction(): CookieAction {
    return this.#cookie;
  }

  /** Loads the session now (get/has/all do it on demand). Resolves to false when there is none. */
  async load(): Promise<boolean> {
    return (await this.#ensureLoaded()) !== null;
  }

  /** The user this session belongs to, or null. */
  async userId(): Promise<string | null> {
    if (this.#userId !== undefined) return this.#userId;
    return (await this.#ensureLoaded())?.meta.userId ?? null;
  }

  /** Associates the session with a user (indexed for listSessions / destroyAllForUser). */
  setUser(userId: string | null): void {
    this.#userId = userId;
  }

  async get<K extends Key<T>>(key: K): Promise<T[K] | undefined> {
    if (this.#del.has(key)) return undefined;
    if (this.#set.has(key)) return this.#set.get(key) as T[K];
    const seen = this.#read.get(key);
    if (seen) return seen.value as T[K];
    const record = await this.#ensureLoaded();
    const original = this.#plain(record, key);
    const value = original === undefined ? undefined : this.#validate(key, decodeValue(key, original));
    this.#read.set(key, { value, original });
    return value as T[K] | undefined;
  }

  async has<K extends Key<T>>(key: K): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  /** Every attribute, as this request sees it. */
  async all(): Promise<Partial<T>> {
    const record = await this.#ensureLoaded();
    const keys = new Set([...Object.keys(record?.attributes ?? {}), ...this.#set.keys()]);
    const out: Partial<T> = {};
    for (const key of keys) {
      const value = await this.get(key as Key<T>);
      if (value !== undefined) out[key as Key<T>] = value;
    }
    return out;
  }

  /** Sets an attribute; written when the request ends, merged field by field with concurrent requests. */
  set<K extends Key<T>>(key: K, value: T[K]): void {
    if (value === undefined) {
      this.delete(key);
      return;
    }
    const checked = this.#validate(key, value);
    encodeValue(key, checked, this.#o.maxSize); // fail here, at the caller, rather than at commit
    this.#set.set(key, checked);
    this.#del.delete(key);
    this.#read.delete(key);
  }

  delete<K extends Key<T>>(key: K): void {
    this.#del.add(key);
    this.#set.delete(key);
    this.#read.delete(key);
  }

  /**
   * Atomically adds `by` in the store, now; concurrent increments on any node all count.
   * With encryption the store cannot add to ciphertext, so this is an update() (compare-and-swap
   * with bounded retries): just as correct, slower on a hot key, and it may throw ConflictError.
   */
  async increment<K extends Key<T>>(key: K, by = 1): Promise<number> {
    if (this.#o.cipher) {
      const next = await this.update(key, (current) => {
        if (current === undefined) return by as T[K];
        if (typeof current !== 'number') throw notANumber(key);
        return (current + by) as T[K];
      });
      return next as number;
    }
    const pending = this.#set.has(key) ? { [key]: encodeValue(key, this.#set.get(key)) } : undefined;
    // A delete earlier in this request goes first (the store applies del, set, incr), so the count restarts at 0.
    const del = this.#del.has(key) ? [key] : undefined;
    const r = await this.#apply({ del, set: pending, incr: { [key]: by } });
    this.#set.delete(key);
    this.#del.delete(key);
    const text = r.values[key] ?? '0';
    const value = Number(text);
    this.#read.set(key, { value, original: text });
    return value;
  }

  /**
   * Read-modify-write of one attribute with compare-and-swap on the session revision:
   * `fn` may run several times, so it must not have side effects. Throws ConflictError
   * after the configured number of attempts.
   */
  async update<K extends Key<T>>(key: K, fn: (current: T[K] | undefined) => T[K]): Promise<T[K]> {
    const retries = this.#o.updateRetries;
    for (let attempt = 0; attempt < retries; attempt++) {
      const record = await this.#reload();
      const base = record ?? (await this.#create({}));
      const original = this.#plain(base, key);
      // This request's own pending set/delete of the key is what it last "wrote", so fn starts from it.
      const current = this.#del.has(key)
        ? undefined
        : this.#set.has(key)
          ? this.#set.get(key)
          : original === undefined
            ? undefined
            : this.#validate(key, decodeValue(key, original));
      const next = this.#validate(key, fn(current as T[K] | undefined)) as T[K];
      const text = encodeValue(key, next, this.#o.maxSize);
      const set = this.#seal(base.id, { [key]: text });
      const r = await this.#o.store.commit(base.id, { set }, this.#commitOptions(base.meta.rev));
      if (r.status === 'ok') {
        this.#afterCommit(base.id, r, { set });
        this.#read.set(key, { value: next, original: text });
        this.#set.delete(key);
        this.#del.delete(key);
        return next;
      }
      if (r.status === 'gone') this.#state = 'missing';
      await sleep(Math.random() * Math.min(100, 2 ** attempt)); // full jitter: spreads racing writers apart
    }
    throw new ConflictError(
      `session.update("${key}") lost its compare-and-swap ${retries} times in a row to concurrent writes; retry the request, raise updateRetries, or use increment() / a lock for hot keys`,
    );
  }

  /**
   * Runs `fn` while holding the lock (this session, name) in the store, so requests
   * on every node that lock the same name run one after the other. Creates the
   * session if there is none. Waits at most `wait` (default 5s) for another holder,
   * then throws LockTimeoutError; the lock is released when fn settles, and lapses
   * after `lease` (default 10s) if this process dies. Work that may outlive its lease
   * should hand `fencingToken` to whatever it writes to.
   */
  async lock<R>(name: string, fn: (ctx: LockContext) => R | Promise<R>, options: LockOptions = {}): Promise<R> {
    const held = await this.acquireLock(name, options);
    try {
      return await fn({ fencingToken: held.fencingToken });
    } finally {
      await held.release();
    }
  }

  /**
   * lock() in two halves, for adapters whose hooks acquire and release at different points.
   * Once the lock is held the session is read again: what this request read before it
   * may predate the previous holder's writes (values it changed in place are kept).
   */
  async acquireLock(name: string, options: LockOptions = {}): Promise<HeldLock> {
    let record = await this.#ensureLoaded();
    const created = !record || this.#state !== 'live';
    if (created) record = await this.#create({});
    const held = await acquireLock(this.#o, (record as StoredSession).id, name, options);
    if (created) return held; // nobody else can have written to a session this request just made
    try {
      if (!(await this.#reload())) {
        throw new SessionGoneError(
          `the session ended (logout or expiry elsewhere) while this request waited for lock "${name}"; retry the request`,
        );
      }
      for (const [key, seen] of this.#read) {
        const mutated =
          typeof seen.value === 'object' && seen.value !== null && encodeValue(key, seen.value) !== seen.original;
        if (!mutated) this.#read.delete(key);
      }
    } catch (err) {
      await held.release();
      throw err;
    }
    return held;
  }

  /** Ends the session on every node: the id is refused from now on; onSessionEnd fires with reason "destroyed". */
  async destroy(): Promise<void> {
    if (this.#id && this.#state !== 'missing' && this.#state !== 'destroyed') {
      const id = this.#id;
      this.#o.nearCache?.drop(id);
      await this.#o.store.destroy(id, Date.now());
      // Even when the store says it was already gone: a logout that timed out may have been applied
      // without its sockets being told.
      await announceRevoked(this.#o, id, 'destroyed');
    }
    this.#state = 'destroyed';
    this.#record = null;
    this.#cached = null;
    this.#read.clear();
    this.#set.clear();
    this.#del.clear();
    this.#userId = undefined;
    this.#cookie = 'clear';
  }

  /**
   * Moves the session to a new id (do it on login: defeats session fixation). The old id
   * is refused on every node as soon as this resolves. keepData copies the attributes.
   */
  async regenerate(options: { keepData?: boolean } = {}): Promise<void> {
    const record = await this.#ensureLoaded();
    // Plaintext: the new id re-encrypts them (encrypted values are bound to their session id).
    const attributes: Record<string, string> = {};
    if (options.keepData && record) {
      for (const key of Object.keys(record.attributes)) attributes[key] = this.#plain(record, key) as string;
    }
    const oldId = record ? record.id : null;
    if (!options.keepData) {
      this.#read.clear();
      for (const key of Object.keys(record?.attributes ?? {})) if (!this.#set.has(key)) this.#del.add(key);
    }
    const userId = this.#userId === undefined ? (record?.meta.userId ?? null) : this.#userId;
    // Rotation moves a session rather than starting one (just as it is not an end).
    await this.#create(attributes, userId, oldId === null);
    if (oldId) this.#o.nearCache?.drop(oldId);
    if (oldId && (await this.#o.store.destroy(oldId, Date.now(), { silent: true }))) {
      await announceRevoked(this.#o, oldId, 'rotated');
    }
  }

  /**
   * Writes what this request changed. Adapters call it before response headers
   * leave, so the next request — on any node — reads these writes.
   */
  commit(): Promise<void> {
    // Memoised: a second caller (e.g. an adapter after a lock helper committed early) gets the same outcome.
    this.#committing ??= this.#commit();
    return this.#committing;
  }

  async #commit(): Promise<void> {
    const delta = this.#delta();
    if (!delta) return this.#maybeTouch();
    if (this.#state === 'live' || this.#state === 'unknown') {
      const id = this.#id as string;
      const sealed = this.#sealDelta(id, delta);
      const r = await this.#o.store.commit(id, sealed, this.#commitOptions());
      if (r.status === 'ok') return this.#afterCommit(id, r, sealed);
      if (r.status === 'not-a-number') throw notANumber(r.key);
      if (r.status === 'conflict') throw new Error('unreachable: commit without expectedRev reported a conflict');
      if (this.#state === 'live') {
        // Destroyed or expired while this request ran: its writes must not bring it back.
        this.#state = 'destroyed';
        this.#cookie = 'clear';
        return;
      }
    }
    // Only deletes or clearing the user: there is nothing to keep, so no session is worth creating.
    if (!delta.set && !delta.userId) {
      if (this.#state === 'unknown') {
        this.#state = 'missing';
        this.#cookie = 'clear';
      }
      return;
    }
    await this.#create(delta.set ?? {}, delta.userId ?? null);
  }

  #delta(): SessionDelta | null {
    const set: Record<string, string> = {};
    let changed = false;
    const max = this.#o.maxSize;
    for (const [key, value] of this.#set) {
      set[key] = encodeValue(key, value, max);
      changed = true;
    }
    for (const [key, seen] of this.#read) {
      if (seen.value === undefined || typeof seen.value !== 'object' || seen.value === null) continue;
      const now = encodeValue(key, seen.value, max);
      if (now !== seen.original) {
        set[key] = now;
        changed = true;
      }
    }
    if (changed) checkCommitSize(set, max);
    const del = [...this.#del];
    if (!changed && del.length === 0 && this.#userId === undefined) return null;
    return {
      ...(changed ? { set } : {}),
      ...(del.length ? { del } : {}),
      ...(this.#userId !== undefined ? { userId: this.#userId } : {}),
    };
  }

  async #maybeTouch(): Promise<void> {
    const r = this.#record;
    if (this.#state !== 'live' || !r) return;
    const now = Date.now();
    if (now - r.meta.lastSeenAt < this.#o.touchMs) return;
    await this.#o.store.touch(r.id, now, now + this.#o.idleMs);
  }

  async #ensureLoaded(): Promise<StoredSession | null> {
    if (this.#state === 'missing' || this.#state === 'destroyed') return this.#record;
    if (this.#record) return this.#record;
    this.#loading ??= this.#fetch(this.#id as string).then((record) => {
      this.#record = record;
      if (record) {
        this.#state = 'live';
      } else {
        this.#state = 'missing';
        this.#cookie = 'clear';
      }
      return record;
    });
    return this.#loading;
  }

  async #reload(): Promise<StoredSession | null> {
    if (!this.#id || this.#state === 'missing' || this.#state === 'destroyed') return null;
    const record = await this.#fetch(this.#id);
    this.#record = record;
    this.#state = record ? 'live' : 'missing';
    return record;
  }

  /** The live session from the store, through the near cache when there is one. */
  async #fetch(id: string): Promise<StoredSession | null> {
    const cache = this.#o.nearCache;
    if (!cache) return this.#o.store.load(id, Date.now());
    const loaded = await cache.load(id, Date.now());
    this.#cached = loaded?.entry ?? null;
    // Meta is this request's own copy (commits update its rev); the attributes are shared and frozen.
    return loaded ? { ...loaded.record, meta: { ...loaded.record.meta } } : null;
  }

  /** A stored attribute as JSON text (decrypted when encryption is on). */
  #plain(record: StoredSession | null, key: string): string | undefined {
    const stored = record?.attributes[key];
    const cipher = this.#o.cipher;
    if (stored === undefined || !cipher) return stored;
    const id = record?.id as string;
    const cached = this.#cached;
    if (cached && this.#o.nearCache && record?.attributes === cached.attributes) {
      return this.#o.nearCache.decrypted(cached, key, () => cipher.decrypt(id, key, stored));
    }
    return cipher.decrypt(id, key, stored);
  }

  /** JSON texts → what the store keeps for session `id`. */
  #seal(id: string, texts: Record<string, string>): Record<string, string> {
    const cipher = this.#o.cipher;
    if (!cipher) return texts;
    const out: Record<string, string> = {};
    for (const [key, text] of Object.entries(texts)) out[key] = cipher.encrypt(id, key, text);
    return out;
  }

  #sealDelta(id: string, delta: SessionDelta): SessionDelta {
    return delta.set ? { ...delta, set: this.#seal(id, delta.set) } : delta;
  }

  /** Creates a brand-new session (fresh id: an id from a cookie is never reused). `attributes` are JSON texts. */
  async #create(
    attributes: Record<string, string>,
    userId: string | null = null,
    announce = true,
  ): Promise<StoredSession> {
    const now = Date.now();
    const id = newSessionId();
    const record: StoredSession = {
      id,
      meta: {
        createdAt: now,
        lastSeenAt: now,
        idleDeadline: now + this.#o.idleMs,
        absoluteDeadline: now + this.#o.absoluteMs,
        userId,
        rev: 1,
        client: this.#ctx.client,
      },
      attributes: this.#seal(id, attributes),
    };
    if (!(await this.#o.store.create(record))) {
      throw new SessionGoneError(
        'a freshly generated session id already exists in the store; the random source is broken',
      );
    }
    this.#id = record.id;
    this.#cached = this.#o.nearCache?.created(record) ?? null;
    // This request keeps its own meta (commits update its rev) and shares the cached attributes;
    // without a cache entry the record is this request's alone already.
    this.#record = this.#cached ? { ...record, meta: { ...record.meta }, attributes: this.#cached.attributes } : record;
    this.#state = 'live';
    this.#cookie = 'set';
    if (announce) await this.#o.onSessionStart?.({ id: record.id, userId }, this.#ctx);
    return record;
  }

  /** Applies a delta now, creating the session first when there is none. */
  async #apply(delta: SessionDelta): Promise<Extract<CommitResult, { status: 'ok' }>> {
    if (this.#state === 'live' || this.#state === 'unknown') {
      const id = this.#id as string;
      const sealed = this.#sealDelta(id, delta);
      const r = await this.#o.store.commit(id, sealed, this.#commitOptions());
      if (r.status === 'ok') {
        this.#afterCommit(id, r, sealed);
        return r;
      }
      if (r.status === 'not-a-number') throw notANumber(r.key);
      this.#state = 'missing';
    }
    const created = await this.#create({});
    const sealed = this.#sealDelta(created.id, delta);
    const r = await this.#o.store.commit(created.id, sealed, this.#commitOptions());
    if (r.status === 'not-a-number') throw notANumber(r.key);
    if (r.status !== 'ok')
      throw new SessionGoneError('the session ended while it was being written; retry the request');
    this.#afterCommit(created.id, r, sealed);
    return r;
  }

  /** `delta` as the store received it. */
  #afterCommit(id: string, r: { rev: number; values: Record<string, string> }, delta: SessionDelta): void {
    this.#id = id;
    this.#state = 'live';
    if (this.#record && this.#record.id === id) this.#record.meta.rev = r.rev;
    this.#o.nearCache?.committed(id, r.rev, delta, r.values);
  }

  #commitOptions(expectedRev?: number) {
    const now = Date.now();
    return { now, idleDeadline: now + this.#o.idleMs, ...(expectedRev !== undefined ? { expectedRev } : {}) };
  }

  #validate(key: string, value: unknown): unknown {
    const check = this.#o.validate[key as Key<T>];
    if (!check) return value;
    try {
      return check(value);
    } catch (err) {
      throw new SessionValueError(`session attribute "${key}" failed validation: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

function notANumber(key: string): SessionValueError {
  return new SessionValueError(
    `session.increment("${key}") needs a number, but "${key}" holds something else; nothing was written`,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
