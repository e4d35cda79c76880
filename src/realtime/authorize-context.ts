import type { SessionData } from '../session/data.js';
import type { SessionSchema } from '../session/options.js';
import type { Identity } from './identity.js';

/**
 * A session's attributes as values, typed by the app's session schema (by default the
 * `SessionData` it declares: `declare module 'shoal' { interface SessionData { role: string } }`),
 * each one possibly absent.
 */
export type SessionAttributes<T extends SessionSchema = SessionData & SessionSchema> = {
  readonly [K in keyof T]?: T[K];
};

/**
 * Who asks to join a channel: what `authorize` (or the subscribe proxy) decides on, and what
 * `connectionInfo` describes.
 */
export interface AuthorizeContext<T extends SessionSchema = SessionData & SessionSchema> {
  /** The shoal session; null for a connection opened with a token or through the connect proxy. */
  sessionId: string | null;
  userId: string | null;
  /**
   * The session's attributes as values, as `session.get()` returns them: decrypted, parsed from
   * JSON, and through the session manager's `validate`. Each is decoded on its first read, so a
   * hook pays only for what it reads. Reading one that cannot be decoded (damaged or altered in
   * the store, refused by `validate`) throws SessionValueError naming it: `authorize` then denies
   * and the gateway logs why; `connectionInfo` then shows no info. Read-only, and changing a value
   * read from it changes nothing in the session. Empty for a token or connect-proxy connection.
   * (In shoal 0.1 they were the stored JSON texts.)
   */
  attributes: SessionAttributes<T>;
  /** How the connection was authenticated. */
  source: 'cookie' | 'token' | 'proxy';
}

/** The app's `authorize`: may this session join this channel? */
export type AuthorizeHook = (session: AuthorizeContext, channel: string) => boolean | Promise<boolean>;

/** What the app's hooks are given of an identity: the documented fields, not the gateway's own bookkeeping. */
export function authorizeContext(who: Identity): AuthorizeContext {
  // Typed by the app's SessionData as session.get() is: the app's declaration (and its `validate`) vouch for the values.
  const attributes = who.attributes as SessionAttributes;
  return { sessionId: who.sessionId, userId: who.userId, attributes, source: who.source };
}
