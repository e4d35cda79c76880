import { ConfigError, ConflictError, SessionGoneError, SessionValueError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import { fullJitter, sleep } from '../core/timing.js';
import type { SessionMeta } from '../stores/contract.js';
import { PendingChanges } from './changes.js';
import { checkAttributeName, checkLossless, decodeValue, encodeValue, validateValue } from './codec.js';
import { lifetimeOf, resolveLifetime, type SessionLifetime } from './lifetime.js';
import { acquireLock, type HeldLock, type LockContext, type LockOptions } from './lock.js';
import type { SessionContext, SessionSchema, SessionStartContext } from './options.js';
import { type CookieAction, IncrementRefused, RecordState } from './record-state.js';
import { type LoadedRecord, plainRecord, plainValue } from './records.js';

export type { CookieAction };

type Key<T> = keyof T & string;

/**
 * The meta of the record a request's session loaded or created, if any (its own copy). For the
 * library's own adapters (the manager's cookie, the express-session drop-in); not part of the
 * package API. Set by Session's static block, which may read its private state: no per-request cost.
 */
export let recordMeta: (session: Session) => SessionMeta | undefined;

/**
 * The attributes of the record a request's session loaded, as JSON texts (decrypted), read without
 * being tracked as reads: for the express-session drop-in, which decodes them and tracks changes
 * itself. Undefined before a load, or when there was no session to load.
 */
export let recordTexts: (session: Session) => Readonly<Record<string, string>> | undefined;

/**
 * One request's view of a session. Loads lazily (an untouched session costs no
 * store call), tracks changes per attribute — nested mutation of a value read
 * with get() included — and commits only what changed, as one atomic store
 * operation, so concurrent requests touching different keys never lose writes.
 */
export class Session<T extends SessionSchema = SessionSchema> {
  readonly #c: SessionContext<T>;
  readonly #r: RecordState;
  readonly #changes = new PendingChanges();
  #committing: Promise<void> | null = null;

  /** Managers make sessions (`manager.open(cookieHeader)`); `incomingId` is a verified id or null. */
  constructor(
    context: SessionContext<T>,
    incomingId: string | null,
    rejectedCookie: boolean,
    ctx: SessionStartContext,
  ) {
    this.#c = context;
    this.#r = new RecordState(context as SessionContext, incomingId, rejectedCookie, ctx);
  }

  /**
   * The session id once it exists (the cookie's, or a new one after the first write). Until the
   * session is loaded it is the id the signed cookie names, which may be of a session that has ended
   * since (logout, expiry): `await session.load()` first where the id must be of a live session.
   */
  get id(): string | null {
    return this.#r.id;
  }

  get cookieAction(): CookieAction {
    return this.#r.cookie;
  }

  /** Loads the session now (get/has/all do it on demand). Resolves to false when there is none. */
  async load(): Promise<boolean> {
    return (await this.#r.ensureLoaded()) !== null;
  }

  /** The user this session belongs to, or null. */
  async userId(): Promise<string | null> {
    if (this.#changes.userId !== undefined) return this.#changes.userId;
    return (await this.#r.ensureLoaded())?.record.meta.userId ?? null;
  }

  /** Associates the session with a user (indexed for listSessions / destroyAllForUser). */
  setUser(userId: string | null): void {
    // Stores keep the id as text: a number or an object came back as itself, "42" or "[object Object]" by store.
    if (typeof userId !== 'string' && userId !== null) {
      throw new SessionValueError(
        `session.setUser(userId) takes the user's id as a string (String(user.id)) or null; got ${kindOf(userId)}`,
      );
    }
    // Stores keep "" as no user, so it would read as signed in for this request and signed out after it.
    if (userId === '') {
      throw new SessionValueError(
        "session.setUser(userId) got an empty string, which is no user: pass the user's id, or null to sign the session out",
      );
    }
    this.#changes.userId = userId;
  }

  /**
   * Gives this session a lifetime of its own ("remember me"): `idle` replaces the manager's
   * idleTimeout and `absolute` its absoluteTimeout (counted from when the session started), for
   * every later request on every node, gateway activity included, and across regenerate(). The
   * cookie becomes persistent, lasting until the absolute deadline. Left out, `idle` is the
   * manager's idleTimeout and `absolute` the longer of absoluteTimeout and `idle`; `null` goes back
   * to the manager's timeouts. Written with the request's other changes; bad input throws a
   * SessionValueError here and records nothing.
   */
  setLifetime(lifetime: SessionLifetime | null): void {
    this.#changes.lifetime = resolveLifetime(lifetime, this.#c.config);
  }

  async get<K extends Key<T>>(key: K): Promise<T[K] | undefined> {
    const changes = this.#changes;
    if (changes.del.has(key) || changes.wrote(key) || changes.read.has(key)) return this.#known(key, null) as T[K];
    return this.#fromStore(key, await this.#r.ensureLoaded()) as T[K] | undefined;
  }

  async has<K extends Key<T>>(key: K): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  /** Every attribute, as this request sees it: one load, no further turn per attribute. */
  async all(): Promise<Partial<T>> {
    const loaded = await this.#r.ensureLoaded();
    const out: Partial<T> = {};
    // Plain loops, no closure or key array: a read route typically calls this once per request.
    const stored = loaded?.record.attributes;
    if (stored) for (const key of Object.keys(stored)) this.#put(out, key, loaded);
    for (const key of this.#changes.writtenKeys())
      if (!stored || !Object.hasOwn(stored, key)) this.#put(out, key, loaded);
    return out;
  }

  #put(out: Partial<T>, key: string, loaded: LoadedRecord | null): void {
    const value = this.#known(key, loaded);
    if (value !== undefined) out[key as Key<T>] = value as T[Key<T>];
  }

  /** What get() answers for a key, given the loaded record (read from it only when this request has not yet). */
  #known(key: string, loaded: LoadedRecord | null): unknown {
    const changes = this.#changes;
    if (changes.del.has(key)) return undefined;
    if (changes.wrote(key)) return changes.written(key);
    const seen = changes.read.get(key);
    if (seen) return seen.value;
    return this.#fromStore(key, loaded);
  }

  /**
   * Decodes (and validates) a stored attribute. An object is remembered with its text, to hand the
   * same object to the next get() and to spot in-place mutation; anything else cannot change in
   * place and reads the same from the loaded record again, so it costs this request no entry.
   */
  #fromStore(key: string, loaded: LoadedRecord | null): unknown {
    const original = loaded ? plainValue(this.#c.services, loaded, key) : undefined;
    const value = original === undefined ? undefined : this.#validate(key, decodeValue(key, original));
    if (typeof value === 'object' && value !== null) this.#changes.recordRead(key, value, original);
    return value;
  }

  /** Sets an attribute; written when the request ends, merged field by field with concurrent requests. */
  set<K extends Key<T>>(key: K, value: T[K]): void {
    checkAttributeName(key);
    if (value === undefined) {
      this.delete(key);
      return;
    }
    const checked = this.#validate(key, value);
    checkLossless(key, checked);
    // Fail here, at the caller, rather than at commit; the text is kept for the commit.
    this.#changes.write(key, checked, encodeValue(key, checked, this.#c.config.maxSize));
  }

  delete<K extends Key<T>>(key: K): void {
    this.#changes.remove(key);
  }

  /**
   * Atomically adds `by` in the store, now; concurrent increments on any node all count.
   * With encryption the store cannot add to ciphertext, so this is an update() (compare-and-swap
   * with bounded retries): just as correct, slower on a hot key, and it may throw ConflictError.
   */
  async increment<K extends Key<T>>(key: K, by = 1): Promise<number> {
    checkAttributeName(key);
    // NaN, Infinity or a string would reach the store and leave text there that is not JSON.
    if (typeof by !== 'number' || !Number.isFinite(by)) throw badAmount(key, by);
    if (this.#c.services.cipher) {
      const next = await this.update(key, (current) => {
        if (current === undefined) return by as T[K];
        if (typeof current !== 'number' || !Number.isFinite(current + by)) throw incrementRefusal(key, by, current);
        return (current + by) as T[K];
      });
      return next as number;
    }
    const changes = this.#changes;
    const pending = changes.wrote(key) ? { [key]: encodeValue(key, changes.written(key)) } : undefined;
    // A delete earlier in this request goes first (the store applies del, set, incr), so the count restarts at 0.
    const r = await this.#r
      .apply({ del: changes.del.has(key) ? [key] : undefined, set: pending, incr: { [key]: by } })
      .catch((err: unknown) => this.#whyNoIncrement(key, by, err));
    const text = r.values[key] ?? '0';
    this.#changes.settled(key, Number(text), text);
    return Number(text);
  }

  /**
   * Read-modify-write of one attribute with compare-and-swap on the session revision:
   * `fn` may run several times, so it must not have side effects. Throws ConflictError
   * after the configured number of attempts.
   */
  async update<K extends Key<T>>(key: K, fn: (current: T[K] | undefined) => T[K]): Promise<T[K]> {
    checkAttributeName(key);
    const retries = this.#c.config.updateRetries;
    const changes = this.#changes;
    for (let attempt = 0; attempt < retries; attempt++) {
      const base = (await this.#r.reload()) ?? (await this.#r.create({}));
      const original = plainValue(this.#c.services, base, key);
      // This request's own pending set/delete of the key is what it last "wrote", so fn starts from it.
      const current = changes.del.has(key)
        ? undefined
        : changes.wrote(key)
          ? changes.written(key)
          : original === undefined
            ? undefined
            : this.#validate(key, decodeValue(key, original));
      const next = this.#validate(key, fn(current as T[K] | undefined)) as T[K];
      checkLossless(key, next);
      const text = encodeValue(key, next, this.#c.config.maxSize);
      const r = await this.#r.commitTo(base.record.id, { set: { [key]: text } }, base.record.meta.rev);
      if (typeof r !== 'string') {
        this.#changes.settled(key, next, text);
        return next;
      }
      await sleep(fullJitter(100, attempt)); // spreads racing writers apart
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
    // Checked before the lock is taken: finding out after would hold it for nothing.
    if (typeof fn !== 'function') {
      throw new ConfigError(
        `session.lock(name, fn) runs fn while holding the lock: session.lock('${typeof name === 'string' ? name : 'checkout'}', async () => { … }); got ${kindOf(fn)} for fn`,
      );
    }
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
    const existing = await this.#r.ensureLoaded();
    const created = !existing || !this.#r.live;
    const loaded = created ? await this.#r.create({}) : existing;
    const held = await acquireLock(this.#c as SessionContext, loaded.record.id, name, options);
    if (created) return held; // nobody else can have written to a session this request just made
    try {
      if (!(await this.#r.reload())) {
        throw new SessionGoneError(
          `the session ended (logout or expiry elsewhere) while this request waited for lock "${name}"; retry the request`,
        );
      }
      this.#changes.forgetUnchangedReads();
    } catch (err) {
      await held.release();
      throw err;
    }
    return held;
  }

  /** Ends the session on every node: the id is refused from now on; onSessionEnd fires with reason "destroyed". */
  async destroy(): Promise<void> {
    await this.#r.destroy();
    this.#changes.clear();
  }

  /**
   * Moves the session to a new id (do it on login: defeats session fixation). The old id
   * is refused on every node as soon as this resolves. keepData copies the attributes.
   */
  async regenerate(options: { keepData?: boolean } = {}): Promise<void> {
    const loaded = await this.#r.ensureLoaded();
    const keys = Object.keys(loaded?.record.attributes ?? {});
    // Plaintext: the new id re-encrypts them (encrypted values are bound to their session id).
    const attributes: Record<string, string> = {};
    if (options.keepData && loaded) {
      for (const key of keys) attributes[key] = plainValue(this.#c.services, loaded, key) as string;
    }
    if (!options.keepData) {
      this.#changes.forgetReads();
      for (const key of keys) if (!this.#changes.wrote(key)) this.#changes.remove(key);
    }
    const userId = this.#changes.userId === undefined ? (loaded?.record.meta.userId ?? null) : this.#changes.userId;
    // Rotation moves a session rather than starting one (just as it is not an end), lifetime included.
    const lifetime = loaded ? lifetimeOf(loaded.record.meta) : undefined;
    await this.#r.create(attributes, userId, loaded === null, lifetime);
    if (loaded) await rotateAway(this.#c as SessionContext, loaded.record.id);
  }

  /**
   * Writes what this request changed. Adapters call it before response headers
   * leave, so the next request — on any node — reads these writes.
   */
  commit(): Promise<void> {
    return this.commitIfNeeded() ?? DONE;
  }

  /**
   * commit(), for adapters: undefined when this request changed nothing and no touch is due, so
   * there is nothing to wait for and the response can go out in the same turn.
   */
  commitIfNeeded(): Promise<void> | undefined {
    // Memoised: a second caller (e.g. an adapter after a lock helper committed early) gets the same outcome.
    if (this.#committing) return this.#committing === DONE ? undefined : this.#committing;
    let delta: ReturnType<PendingChanges['delta']>;
    try {
      delta = this.#changes.delta(this.#c.config.maxSize);
    } catch (err) {
      this.#committing = Promise.reject(err);
      return this.#committing;
    }
    if (!delta && !this.#r.touchDue()) {
      this.#committing = DONE;
      return undefined;
    }
    this.#committing = this.#r.commit(delta);
    return this.#committing;
  }

  /**
   * A store refuses an increment with one answer for two causes (the value is not a number, or the
   * sum would not be finite): on that error path only, the stored value says which, for the message.
   */
  async #whyNoIncrement(key: string, by: number, err: unknown): Promise<never> {
    if (!(err instanceof IncrementRefused)) throw err;
    const loaded = await this.#r.reload().catch(() => null);
    const text = loaded ? plainValue(this.#c.services, loaded, key) : undefined;
    let current: unknown;
    try {
      current = text === undefined ? undefined : JSON.parse(text);
    } catch {
      throw err;
    }
    if (current === undefined) throw err;
    throw incrementRefusal(key, by, current);
  }

  #validate(key: string, value: unknown): unknown {
    return validateValue(this.#c.config.validate[key as Key<T>], key, value);
  }

  static {
    recordMeta = (session) => session.#r.meta;
    recordTexts = (session) => {
      const loaded = session.#r.loaded;
      return loaded ? plainRecord(session.#c.services, loaded).attributes : undefined;
    };
  }
}

/** Why increment() could not add `by` to the value the session holds: not a number, or a sum past the largest. */
function incrementRefusal(key: string, by: number, current: unknown): SessionValueError {
  if (typeof current === 'number') {
    return new SessionValueError(
      `session.increment("${key}", ${by}) would take "${key}" (${current}) past the largest number; nothing was written`,
    );
  }
  return new SessionValueError(
    `session.increment("${key}") needs a number, but "${key}" holds ${kindOf(current)}; nothing was written`,
  );
}

/** increment() given an amount that is not a finite number (a sum past the largest is incrementRefusal's). */
function badAmount(key: string, by: unknown): SessionValueError {
  const got = typeof by === 'number' ? String(by) : kindOf(by);
  return new SessionValueError(
    `session.increment("${key}", by) needs a finite number to add, e.g. increment("${key}", 1); got ${got}, so nothing was written`,
  );
}

/** Removes a session id that a new one replaced (rotation, not an end) and tells every node to refuse it. */
export async function rotateAway(c: SessionContext, oldId: string): Promise<void> {
  c.services.nearCache?.drop(oldId);
  if (await c.services.store.destroy(oldId, Date.now(), { silent: true })) {
    await c.events.emit('revoked', oldId, 'rotated');
  }
}

const DONE: Promise<void> = Promise.resolve(); // the outcome of a commit that had nothing to write
