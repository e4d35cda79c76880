import { ConfigError } from '../core/errors.js';
import { hashId } from '../core/ids.js';
import { kindOf } from '../core/kind-of.js';
import type { StoredSession } from '../stores/contract.js';
import { decodeValue } from './codec.js';
import { type CookieAttributes, clearCookie, MAX_COOKIE_VALUE, readCookie, serializeCookie } from './cookie.js';
import type { CookieRejection, SessionEvents } from './events.js';
import { endsUnsupported, Sweeper } from './lifecycle.js';
import type { NearCacheStats } from './near-cache.js';
import {
  resolveSession,
  type SessionConfig,
  type SessionContext,
  type SessionOptions,
  type SessionSchema,
  type SessionServices,
  type SessionStartContext,
  type SessionStats,
} from './options.js';
import { OutageLog } from './outage-log.js';
import { fetchRecord, plainRecord } from './records.js';
import { recordMeta, Session } from './session.js';
import { KeyRing } from './signing.js';

/**
 * Per store location, how many managers in this process have an onSessionEnd for it. A manager
 * without one (the runtime's, beside an express-session drop-in that has one) does not sweep
 * while that count is above 0: its sweeper would claim the ends and drop them. Kept on
 * globalThis, so a second copy of the package (a CommonJS app under the CLI) shares it.
 */
const END_HANDLERS = Symbol.for('shoal.sessionEndHandlers');
const processWide = globalThis as { [END_HANDLERS]?: Map<string, number> };
processWide[END_HANDLERS] ??= new Map<string, number>();
const endHandlers: Map<string, number> = processWide[END_HANDLERS];

/**
 * Framework-agnostic entry point: turns a Cookie header into a request's
 * Session and, after the handler ran, into the Set-Cookie header to send.
 * Adapters (express, fastify, hono, node:http) are thin wrappers around it.
 */
export class SessionManager<T extends SessionSchema = SessionSchema> {
  /** The resolved settings (frozen). */
  readonly config: SessionConfig<T>;
  /** Revocations and refused cookies, for gateways and metrics: `events.on(...)` returns its unsubscribe. */
  readonly events: SessionEvents;
  readonly #services: SessionServices;
  readonly #context: SessionContext<T>;
  readonly #keys: KeyRing;
  readonly #cookieAttrs: CookieAttributes;

  readonly #sweeper: Sweeper | undefined;
  /** The store's sharedAs, while this manager's sweeper has an onSessionEnd for it. */
  #handles: string | undefined;

  constructor(options: SessionOptions<T>) {
    this.#context = resolveSession(options);
    contexts.set(this, this.#context as SessionContext);
    const { config: o, services, events } = this.#context;
    this.config = o;
    this.#services = services;
    this.events = events;
    this.#keys = new KeyRing(o.secrets, o.scope);
    const store = services.store;
    if (o.onSessionEnd && !store.capabilities.lifecycle) {
      throw new ConfigError(endsUnsupported(store.kind));
    }
    if (store.capabilities.lifecycle && o.sweepEnabled) {
      const cipher = services.cipher;
      const outage = new OutageLog({
        logger: services.logger,
        dependency: `store ${o.storeLabel}`,
        paused: `${o.scope} end handling`,
      });
      const shared = store.sharedAs;
      if (o.onSessionEnd && shared !== undefined) {
        this.#handles = shared;
        endHandlers.set(shared, (endHandlers.get(shared) ?? 0) + 1);
      }
      this.#sweeper = new Sweeper({
        store,
        owner: o.nodeId,
        onSessionEnd: o.onSessionEnd,
        ...(!o.onSessionEnd && shared !== undefined ? { standDown: () => (endHandlers.get(shared) ?? 0) > 0 } : {}),
        // Destroyed ends were announced when destroyed; announcing again covers a destroy whose
        // announcement was lost (bus down, or a logout that timed out but was applied late).
        onClaimed: (id, reason) => events.emit('revoked', id, reason),
        decode: cipher ? (id, key, text) => decodeValue(key, cipher.decrypt(id, key, text)) : undefined,
        intervalMs: o.sweepIntervalMs,
        leaseMs: o.sweepLeaseMs,
        onClaimFailed: (err) => outage.failed(err),
        onClaimSucceeded: () => outage.succeeded(),
        onError: (err, id, attempt) =>
          services.logger.error(
            { session: id ? hashId(id) : undefined, attempt, err },
            `${o.scope} end handling failed`,
          ),
      });
      this.#sweeper.start();
    }
    this.#cookieAttrs = { secure: o.secure, sameSite: o.sameSite, path: '/', maxAge: o.maxAge, httpOnly: true };
  }

  get cookieName(): string {
    return this.config.cookieName;
  }

  /**
   * The session a request presents. A cookie that is missing, oversized,
   * duplicated, malformed or not signed by our key ring yields no id: the
   * request gets a fresh session if it writes, and the store is never asked.
   */
  open(cookieHeader: string | undefined, ctx: SessionStartContext = {}): Session<T> {
    const { id, rejected } = this.idFromCookie(cookieHeader);
    return new Session<T>(this.#context, id, rejected, ctx);
  }

  /** The session of an id already verified (idFromCookie): adapters that read the cookie themselves. */
  openId(id: string, ctx: SessionStartContext = {}): Session<T> {
    return new Session<T>(this.#context, id, false, ctx);
  }

  /** The verified session id in a Cookie header, if any (gateways use it for the handshake). */
  idFromCookie(cookieHeader: string | undefined): { id: string | null; rejected: boolean } {
    const values = readCookie(cookieHeader, this.config.cookieName);
    if (values.length === 0) return { id: null, rejected: false };
    const [value] = values;
    if (values.length > 1) return this.#reject('duplicate');
    if (value === undefined || value.length > MAX_COOKIE_VALUE) return this.#reject('oversized');
    const id = this.#keys.unsign(value);
    return id === null ? this.#reject('bad-signature') : { id, rejected: false };
  }

  #reject(reason: CookieRejection): { id: null; rejected: true } {
    void this.events.emit('cookieRejected', reason);
    return { id: null, rejected: true };
  }

  /**
   * Loads a live session by id (for admin tools). Attributes are the stored JSON texts, decrypted
   * when encryption is on (the store's own load() returns ciphertext), neither parsed nor validated:
   * `JSON.parse` each. The gateways' hooks get values instead (session/attribute-values.ts).
   */
  async load(id: string): Promise<StoredSession | null> {
    const loaded = await fetchRecord(this.#services, id);
    return loaded && plainRecord(this.#services, loaded);
  }

  /**
   * Refreshes a session's idle deadline without writing its data (gateways call it on socket
   * activity; throttle it to config.touchMs). A session with a lifetime of its own (setLifetime)
   * slides by its own idle length: the store knows it. Resolves to false when the session is gone.
   */
  async touch(id: string, now = Date.now()): Promise<boolean> {
    return this.#services.store.touch(id, now, now + this.config.idleMs);
  }

  /** Rejects when the session store cannot be reached (readiness checks). */
  async ping(): Promise<void> {
    await this.#services.store.ping();
  }

  /** Lock and size counters for /metrics; they only ever grow. */
  get stats(): Readonly<SessionStats> {
    return this.#services.stats;
  }

  /** Near-cache size and read counters, or null when the near cache is off (or the store cannot back it). */
  get nearCache(): Readonly<NearCacheStats> | null {
    return this.#services.nearCache?.stats ?? null;
  }

  /** The Set-Cookie value the response needs after commit(), or undefined. */
  setCookieHeader(session: Session<T>): string | undefined {
    switch (session.cookieAction) {
      case 'set': {
        const meta = recordMeta(session);
        // A session with its own lifetime keeps its cookie (persistent) for as long as it can live.
        const attrs =
          meta?.idleMs === undefined
            ? this.#cookieAttrs
            : { ...this.#cookieAttrs, maxAge: Math.max(1, Math.floor((meta.absoluteDeadline - Date.now()) / 1000)) };
        return serializeCookie(this.config.cookieName, this.#keys.sign(session.id as string), attrs);
      }
      case 'clear':
        return clearCookie(this.config.cookieName, this.#cookieAttrs);
      default:
        return undefined;
    }
  }

  /** A user's live sessions, for a "where you're signed in" page. */
  async listSessions(userId: string): Promise<SessionInfo[]> {
    checkUserId(userId, 'listSessions');
    const sessions = await this.#services.store.listByUser(userId, Date.now());
    return sessions
      .map((s) => ({
        id: s.id,
        createdAt: s.meta.createdAt,
        lastSeenAt: s.meta.lastSeenAt,
        client: s.meta.client ?? null,
      }))
      .sort((a, b) => b.lastSeenAt - a.lastSeenAt);
  }

  /** Ends one session on every node (reason "destroyed"). false when it was already gone. */
  async destroySession(id: string): Promise<boolean> {
    this.#services.nearCache?.drop(id);
    const ended = await this.#services.store.destroy(id, Date.now());
    // Announced even when the store says it was already gone: an earlier destroy may have been
    // applied without its announcement reaching the gateways (its request timed out).
    await this.events.emit('revoked', id, 'destroyed');
    return ended;
  }

  /**
   * "Log out everywhere": ends every live session of the user except `except`
   * (usually the current one). When it resolves, every node refuses the ended ids.
   */
  async destroyAllForUser(userId: string, options: { except?: string | null } = {}): Promise<number> {
    checkUserId(userId, 'destroyAllForUser');
    const sessions = await this.#services.store.listByUser(userId, Date.now());
    const ended = await Promise.all(
      sessions.filter((s) => s.id !== options.except).map((s) => this.destroySession(s.id)),
    );
    return ended.filter(Boolean).length;
  }

  /**
   * Subscribes to "this session id is no longer valid" (destroyed, rotated away, expired) —
   * how realtime gateways learn to close the session's sockets. Returns the unsubscribe function.
   */
  onSessionRevoked(listener: (id: string, reason: string) => void | Promise<void>): () => void {
    return this.events.on('revoked', listener);
  }

  /** Runs one sweep now (tests, admin tools); normally the background sweeper does this. */
  async sweep(): Promise<number> {
    return this.#sweeper ? this.#sweeper.sweep() : 0;
  }

  /** Stops the sweeper (the store is the caller's to close). */
  async close(): Promise<void> {
    const shared = this.#handles;
    if (shared !== undefined) {
      this.#handles = undefined;
      const left = (endHandlers.get(shared) ?? 1) - 1;
      if (left > 0) endHandlers.set(shared, left);
      else endHandlers.delete(shared);
    }
    await this.#sweeper?.stop();
  }

  /** Signs an id into a cookie value (tests and tools that mint sessions). */
  sign(id: string): string {
    return this.#keys.sign(id);
  }
}

const contexts = new WeakMap<object, SessionContext>();

/** A manager's resolved context, for the library's own adapters (the drop-in); not part of the package API. */
export function sessionContext(manager: object): SessionContext {
  return contexts.get(manager) as SessionContext;
}

export interface SessionInfo {
  id: string;
  createdAt: number;
  lastSeenAt: number;
  /** User agent / address summary recorded when the session started. */
  client: string | null;
}

/** Typed session manager: `defineSession<{ cart: Cart; userId?: string }>({ store })`. */
export function defineSession<T extends SessionSchema>(options: SessionOptions<T>): SessionManager<T> {
  return new SessionManager<T>(options);
}

/** A user id from app code: setUser() stores it as text, so a number or an object would match nobody. */
function checkUserId(userId: unknown, call: string): void {
  if (typeof userId === 'string') return;
  throw new ConfigError(
    `sessions.${call}(userId) takes the user's id as a string, as given to setUser (String(user.id)); got ${kindOf(userId)}`,
  );
}
