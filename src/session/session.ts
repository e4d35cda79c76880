import { ConflictError, SessionGoneError, SessionValueError } from '../core/errors.js';
import { newSessionId } from '../core/ids.js';
import type { CommitResult, SessionDelta, StoredSession } from '../stores/contract.js';
import { decodeValue, encodeValue } from './codec.js';
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
  #loading: Promise<StoredSession | null> | null = null;
  /** Values handed out by get(), with the text they were decoded from, to spot in-place mutation. */
  readonly #read = new Map<string, { value: unknown; original: string | undefined }>();
  readonly #set = new Map<string, unknown>();
  readonly #del = new Set<string>();
  #userId: string | null | undefined = undefined;
  #cookie: CookieAction;
  #committed = false;

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
    const original = record?.attributes[key];
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
    encodeValue(key, checked); // fail here, at the caller, rather than at commit
    this.#set.set(key, checked);
    this.#del.delete(key);
    this.#read.delete(key);
  }

  delete<K extends Key<T>>(key: K): void {
    this.#del.add(key);
    this.#set.delete(key);
    this.#read.delete(key);
  }

  /** Atomically adds `by` in the store, now; concurrent increments on any node all count. */
  async increment<K extends Key<T>>(key: K, by = 1): Promise<number> {
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
      const original = base.attributes[key];
      // This request's own pending set/delete of the key is what it last "wrote", so fn starts from it.
      const current = this.#del.has(key)
        ? undefined
        : this.#set.has(key)
          ? this.#set.get(key)
          : original === undefined
            ? undefined
            : this.#validate(key, decodeValue(key, original));
      const next = this.#validate(key, fn(current as T[K] | undefined)) as T[K];
      const text = encodeValue(key, next);
      const r = await this.#o.store.commit(base.id, { set: { [key]: text } }, this.#commitOptions(base.meta.rev));
      if (r.status === 'ok') {
        this.#afterCommit(base.id, r);
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

  /** Ends the session on every node: the id is refused from now on; onSessionEnd fires with reason "destroyed". */
  async destroy(): Promise<void> {
    if (this.#id && this.#state !== 'missing' && this.#state !== 'destroyed') {
      const id = this.#id;
      if (await this.#o.store.destroy(id, Date.now())) await announceRevoked(this.#o, id, 'destroyed');
    }
    this.#state = 'destroyed';
    this.#record = null;
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
    const attributes = options.keepData && record ? { ...record.attributes } : {};
    const oldId = record ? record.id : null;
    if (!options.keepData) {
      this.#read.clear();
      for (const key of Object.keys(record?.attributes ?? {})) if (!this.#set.has(key)) this.#del.add(key);
    }
    const userId = this.#userId === undefined ? (record?.meta.userId ?? null) : this.#userId;
    // Rotation moves a session rather than starting one (just as it is not an end).
    await this.#create(attributes, userId, oldId === null);
    if (oldId && (await this.#o.store.destroy(oldId, Date.now(), { silent: true }))) {
      await announceRevoked(this.#o, oldId, 'rotated');
    }
  }

  /**
   * Writes what this request changed. Adapters call it before response headers
   * leave, so the next request — on any node — reads these writes.
   */
  async commit(): Promise<void> {
    if (this.#committed) return;
    this.#committed = true;
    const delta = this.#delta();
    if (!delta) return this.#maybeTouch();
    if (this.#state === 'live' || this.#state === 'unknown') {
      const r = await this.#o.store.commit(this.#id as string, delta, this.#commitOptions());
      if (r.status === 'ok') return this.#afterCommit(this.#id as string, r);
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
    for (const [key, value] of this.#set) {
      set[key] = encodeValue(key, value);
      changed = true;
    }
    for (const [key, seen] of this.#read) {
      if (seen.value === undefined || typeof seen.value !== 'object' || seen.value === null) continue;
      const now = encodeValue(key, seen.value);
      if (now !== seen.original) {
        set[key] = now;
        changed = true;
      }
    }
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
    this.#loading ??= this.#o.store.load(this.#id as string, Date.now()).then((record) => {
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
    const record = await this.#o.store.load(this.#id, Date.now());
    this.#record = record;
    this.#state = record ? 'live' : 'missing';
    return record;
  }

  /** Creates a brand-new session (fresh id: an id from a cookie is never reused). */
  async #create(
    attributes: Record<string, string>,
    userId: string | null = null,
    announce = true,
  ): Promise<StoredSession> {
    const now = Date.now();
    const record: StoredSession = {
      id: newSessionId(),
      meta: {
        createdAt: now,
        lastSeenAt: now,
        idleDeadline: now + this.#o.idleMs,
        absoluteDeadline: now + this.#o.absoluteMs,
        userId,
        rev: 1,
        client: this.#ctx.client,
      },
      attributes,
    };
    if (!(await this.#o.store.create(record))) {
      throw new SessionGoneError(
        'a freshly generated session id already exists in the store; the random source is broken',
      );
    }
    this.#id = record.id;
    this.#record = record;
    this.#state = 'live';
    this.#cookie = 'set';
    if (announce) await this.#o.onSessionStart?.({ id: record.id, userId }, this.#ctx);
    return record;
  }

  /** Applies a delta now, creating the session first when there is none. */
  async #apply(delta: SessionDelta): Promise<Extract<CommitResult, { status: 'ok' }>> {
    if (this.#state === 'live' || this.#state === 'unknown') {
      const r = await this.#o.store.commit(this.#id as string, delta, this.#commitOptions());
      if (r.status === 'ok') {
        this.#afterCommit(this.#id as string, r);
        return r;
      }
      if (r.status === 'not-a-number') throw notANumber(r.key);
      this.#state = 'missing';
    }
    const created = await this.#create({});
    const r = await this.#o.store.commit(created.id, delta, this.#commitOptions());
    if (r.status === 'not-a-number') throw notANumber(r.key);
    if (r.status !== 'ok')
      throw new SessionGoneError('the session ended while it was being written; retry the request');
    this.#afterCommit(created.id, r);
    return r;
  }

  #afterCommit(id: string, r: { rev: number }): void {
    this.#id = id;
    this.#state = 'live';
    if (this.#record && this.#record.id === id) this.#record.meta.rev = r.rev;
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
