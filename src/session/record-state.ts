import { SessionGoneError, SessionValueError } from '../core/errors.js';
import { newSessionId } from '../core/ids.js';
import type {
  CommitOptions,
  CommitResult,
  LifetimeChange,
  SessionDelta,
  SessionMeta,
  StoredSession,
} from '../stores/contract.js';
import type { SessionContext, SessionStartContext } from './options.js';
import { createRecord, fetchRecord, type LoadedRecord, sealValues } from './records.js';

type State = 'unknown' | 'live' | 'missing' | 'destroyed';
export type Committed = Extract<CommitResult, { status: 'ok' }>;

/** What the response must do with the session cookie. */
export type CookieAction = 'none' | 'set' | 'clear';

/**
 * Which stored session one request has, and what the store last said about it: the request's
 * side of loading, creating, committing and ending. Session layers change tracking on top.
 */
export class RecordState {
  readonly #c: SessionContext;
  readonly #ctx: SessionStartContext;
  #id: string | null;
  #state: State;
  #loaded: LoadedRecord | null = null;
  #loading: Promise<LoadedRecord | null> | null = null;
  cookie: CookieAction;

  constructor(context: SessionContext, incomingId: string | null, rejectedCookie: boolean, ctx: SessionStartContext) {
    this.#c = context;
    this.#ctx = ctx;
    this.#id = incomingId;
    this.#state = incomingId ? 'unknown' : 'missing';
    this.cookie = rejectedCookie ? 'clear' : 'none';
  }

  get id(): string | null {
    return this.#state === 'missing' || this.#state === 'destroyed' ? null : this.#id;
  }

  get live(): boolean {
    return this.#state === 'live';
  }

  /** The record loaded or created, if any. */
  get loaded(): LoadedRecord | null {
    return this.#loaded;
  }

  /** The meta of the record loaded or created, if any (this request's own copy). */
  get meta(): SessionMeta | undefined {
    return this.#loaded?.record.meta;
  }

  /**
   * Not an async function: one returning the load's promise would wrap it in a second promise and
   * resolve that through a thenable job, two extra turns and their allocations on every session read.
   */
  ensureLoaded(): Promise<LoadedRecord | null> {
    if (this.#state === 'missing' || this.#state === 'destroyed' || this.#loaded) return Promise.resolve(this.#loaded);
    this.#loading ??= fetchRecord(this.#c.services, this.#id as string).then((loaded) => {
      this.#loaded = loaded;
      this.#state = loaded ? 'live' : 'missing';
      if (!loaded) this.cookie = 'clear';
      return loaded;
    });
    return this.#loading;
  }

  /** Reads the session again (after a lock wait, before a compare-and-swap). */
  async reload(): Promise<LoadedRecord | null> {
    if (!this.#id || this.#state === 'missing' || this.#state === 'destroyed') return null;
    this.#loaded = await fetchRecord(this.#c.services, this.#id);
    this.#state = this.#loaded ? 'live' : 'missing';
    return this.#loaded;
  }

  /** Creates a brand-new session (fresh id: an id from a cookie is never reused). `attributes` are JSON texts. */
  async create(
    attributes: Record<string, string>,
    userId: string | null = null,
    announce = true,
    lifetime?: LifetimeChange,
  ): Promise<LoadedRecord> {
    const loaded = await createRecord(this.#c, newSessionId(), attributes, userId, this.#ctx.client, lifetime);
    this.#id = loaded.record.id;
    this.#loaded = loaded;
    this.#state = 'live';
    this.cookie = 'set';
    if (announce) await this.#c.config.onSessionStart?.({ id: loaded.record.id, userId }, this.#ctx);
    return loaded;
  }

  /**
   * The end-of-request write: to the session there is, else to a new one when there is data to keep.
   * Not an async function: the usual case (a session there is) is one store call and one handler,
   * with no async frames of its own around it.
   */
  commit(delta: SessionDelta | null): Promise<void> {
    if (!delta) return this.#maybeTouch();
    const before = this.#state;
    if (before !== 'live' && before !== 'unknown') return this.#commitElsewhere(delta, before);
    // A new lifetime changes the cookie, whose Max-Age counts from the session's start: read it first.
    if (delta.lifetime && !this.#loaded) return this.ensureLoaded().then(() => this.commit(delta));
    const id = this.#id as string;
    let sealed: SessionDelta;
    let pending: Promise<CommitResult>;
    try {
      sealed = this.#seal(id, delta);
      pending = this.#send(id, sealed, undefined);
    } catch (err) {
      return Promise.reject(err);
    }
    return pending.then((r) => {
      const outcome = this.#settle(id, sealed, r);
      if (outcome === 'conflict') throw new Error('unreachable: commit without expectedRev reported a conflict');
      return outcome === 'gone' ? this.#commitElsewhere(delta, before) : undefined;
    });
  }

  /** commit() when the session the request had is gone (or never was): end it, or start a new one. */
  async #commitElsewhere(delta: SessionDelta, before: State): Promise<void> {
    if (before === 'live') {
      // Destroyed or expired while this request ran: its writes must not bring it back.
      this.#state = 'destroyed';
      this.cookie = 'clear';
      return;
    }
    // Only deletes or clearing the user: there is nothing to keep, so no session is worth creating.
    if (!delta.set && !delta.userId) {
      if (before === 'unknown') {
        this.#state = 'missing';
        this.cookie = 'clear';
      }
      return;
    }
    await this.create(delta.set ?? {}, delta.userId ?? null, true, delta.lifetime);
  }

  /** Applies a delta now, creating the session first when there is none. */
  async apply(delta: SessionDelta): Promise<Committed> {
    const r = (await this.#commitExisting(delta)) ?? (await this.commitTo((await this.create({})).record.id, delta));
    if (typeof r === 'string') {
      throw new SessionGoneError('the session ended while it was being written; retry the request');
    }
    return r;
  }

  /** The one place a commit's result is read: success updates this request's view, the rest is reported. */
  async commitTo(id: string, delta: SessionDelta, expectedRev?: number): Promise<Committed | 'gone' | 'conflict'> {
    const sealed = this.#seal(id, delta);
    return this.#settle(id, sealed, await this.#send(id, sealed, expectedRev));
  }

  /** The delta as the store keeps it: a copy only when encryption changed the values. */
  #seal(id: string, delta: SessionDelta): SessionDelta {
    const set = delta.set && sealValues(this.#c.services, id, delta.set);
    return set === delta.set ? delta : { ...delta, set };
  }

  #send(id: string, sealed: SessionDelta, expectedRev: number | undefined): Promise<CommitResult> {
    const now = Date.now();
    const options: CommitOptions = { now, idleDeadline: now + this.#c.config.idleMs };
    if (expectedRev !== undefined) options.expectedRev = expectedRev;
    return this.#c.services.store.commit(id, sealed, options);
  }

  #settle(id: string, sealed: SessionDelta, r: CommitResult): Committed | 'gone' | 'conflict' {
    if (r.status === 'not-a-number') throw notANumber(r.key);
    if (r.status === 'gone') this.#state = 'missing';
    if (r.status !== 'ok') return r.status;
    this.#id = id;
    this.#state = 'live';
    if (this.#loaded && this.#loaded.record.id === id) {
      this.#loaded.record.meta.rev = r.rev;
      if (sealed.lifetime) this.#newLifetime(this.#loaded.record, sealed.lifetime);
    }
    this.#c.services.nearCache?.committed(id, r.rev, sealed, r.values);
    return r;
  }

  /** A lifetime the store just applied: this request's meta follows, and the cookie is sent again when it changed. */
  #newLifetime(record: StoredSession, lifetime: LifetimeChange): void {
    const meta = record.meta;
    const idleMs = lifetime.idleMs ?? undefined;
    const absoluteDeadline = meta.createdAt + lifetime.absoluteMs;
    if (meta.idleMs === idleMs && meta.absoluteDeadline === absoluteDeadline) return;
    meta.absoluteDeadline = absoluteDeadline;
    if (idleMs === undefined) delete meta.idleMs;
    else meta.idleMs = idleMs;
    this.cookie = 'set';
  }

  /** Ends the session on every node (reason "destroyed"). */
  async destroy(): Promise<void> {
    if (this.#id && this.#state !== 'missing' && this.#state !== 'destroyed') {
      const id = this.#id;
      this.#c.services.nearCache?.drop(id);
      await this.#c.services.store.destroy(id, Date.now());
      // Even when the store says it was already gone: a logout that timed out may have been applied
      // without its sockets being told.
      await this.#c.events.emit('revoked', id, 'destroyed');
    }
    this.#state = 'destroyed';
    this.#loaded = null;
    this.cookie = 'clear';
  }

  /** Commits to the session the request has, if any; null when there is none (any more). */
  async #commitExisting(delta: SessionDelta): Promise<Committed | null> {
    if (this.#state !== 'live' && this.#state !== 'unknown') return null;
    const r = await this.commitTo(this.#id as string, delta);
    if (r === 'conflict') throw new Error('unreachable: commit without expectedRev reported a conflict');
    return r === 'gone' ? null : r;
  }

  /** Whether a commit with nothing to write would still refresh the idle deadline (touchInterval passed). */
  touchDue(now = Date.now()): boolean {
    const r = this.#loaded?.record;
    if (this.#state !== 'live' || r === undefined) return false;
    const own = r.meta.idleMs;
    // A session with a shorter idle of its own is touched as often as the manager's default would be for it.
    const every = own === undefined ? this.#c.config.touchMs : Math.min(this.#c.config.touchMs, Math.floor(own / 10));
    return now - r.meta.lastSeenAt >= every;
  }

  async #maybeTouch(): Promise<void> {
    const now = Date.now();
    if (!this.touchDue(now)) return;
    const r = this.#loaded?.record as StoredSession;
    await this.#c.services.store.touch(r.id, now, now + (r.meta.idleMs ?? this.#c.config.idleMs));
  }
}

/** The store's refusal of an increment: session.increment() looks at the stored value to say which cause it was. */
export class IncrementRefused extends SessionValueError {}

export function notANumber(key: string): SessionValueError {
  return new IncrementRefused(
    `session.increment("${key}") needs a number, but "${key}" holds something else (or the total would pass the largest number); nothing was written`,
  );
}
