import type { StoredSession } from '../stores/contract.js';
import { type CookieAttributes, clearCookie, MAX_COOKIE_VALUE, readCookie, serializeCookie } from './cookie.js';
import {
  type ResolvedSessionOptions,
  resolveOptions,
  type SessionOptions,
  type SessionSchema,
  type SessionStartContext,
} from './options.js';
import { Session } from './session.js';
import { KeyRing } from './signing.js';

/**
 * Framework-agnostic entry point: turns a Cookie header into a request's
 * Session and, after the handler ran, into the Set-Cookie header to send.
 * Adapters (express, fastify, hono, node:http) are thin wrappers around it.
 */
export class SessionManager<T extends SessionSchema = SessionSchema> {
  readonly options: ResolvedSessionOptions<T>;
  readonly #keys: KeyRing;
  readonly #cookieAttrs: CookieAttributes;

  constructor(options: SessionOptions<T>) {
    this.options = resolveOptions(options);
    this.#keys = new KeyRing(this.options.secrets);
    this.#cookieAttrs = {
      secure: this.options.secure,
      sameSite: this.options.sameSite,
      path: '/',
      maxAge: this.options.maxAge,
      httpOnly: true,
    };
  }

  get cookieName(): string {
    return this.options.cookieName;
  }

  /**
   * The session a request presents. A cookie that is missing, oversized,
   * duplicated, malformed or not signed by our key ring yields no id: the
   * request gets a fresh session if it writes, and the store is never asked.
   */
  open(cookieHeader: string | undefined, ctx: SessionStartContext = {}): Session<T> {
    const { id, rejected } = this.idFromCookie(cookieHeader);
    return new Session<T>(this.options, id, rejected, ctx);
  }

  /** The verified session id in a Cookie header, if any (gateways use it for the handshake). */
  idFromCookie(cookieHeader: string | undefined): { id: string | null; rejected: boolean } {
    const values = readCookie(cookieHeader, this.options.cookieName);
    if (values.length === 0) return { id: null, rejected: false };
    const [value] = values;
    if (values.length > 1 || value === undefined || value.length > MAX_COOKIE_VALUE)
      return { id: null, rejected: true };
    const id = this.#keys.unsign(value);
    return { id, rejected: id === null };
  }

  /** Loads a live session by id (for gateways and admin tools). */
  async load(id: string): Promise<StoredSession | null> {
    return this.options.store.load(id, Date.now());
  }

  /** The Set-Cookie value the response needs after commit(), or undefined. */
  setCookieHeader(session: Session<T>): string | undefined {
    switch (session.cookieAction) {
      case 'set':
        return serializeCookie(this.options.cookieName, this.#keys.sign(session.id as string), this.#cookieAttrs);
      case 'clear':
        return clearCookie(this.options.cookieName, this.#cookieAttrs);
      default:
        return undefined;
    }
  }

  /** Signs an id into a cookie value (tests and tools that mint sessions). */
  sign(id: string): string {
    return this.#keys.sign(id);
  }
}

/** Typed session manager: `defineSession<{ cart: Cart; userId?: string }>({ store })`. */
export function defineSession<T extends SessionSchema>(options: SessionOptions<T>): SessionManager<T> {
  return new SessionManager<T>(options);
}
