import type { IncomingMessage } from 'node:http';
import { isStoreUrl, STORE_SCHEMES } from '../core/backend-url.js';
import { nearestName } from '../core/did-you-mean.js';
import { ConfigError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import type { Logger } from '../core/logger.js';
import type { MetricsOption } from '../core/metrics.js';
import type { EncryptionOptions } from '../session/encryption.js';
import { endsUnsupported, type SessionEndHandler } from '../session/lifecycle.js';
import type { NearCacheOptions } from '../session/near-cache.js';
import { isSessionStore, type SessionStore } from '../stores/contract.js';
import { COOKIE_KEYS, type CookieOptions } from './express-session-cookie.js';

/** An express-session store, as `migrateFrom` uses it: callback style, as every such store supports. */
export interface LegacyStore {
  get(sid: string, callback: (err: unknown, session?: Record<string, unknown> | null) => void): unknown;
  destroy(sid: string, callback?: (err?: unknown) => void): unknown;
}

/**
 * express-session's options (those shoal supports) plus shoal's own. Anything else is
 * refused when the middleware is created, so nothing is silently ignored.
 */
export interface ExpressSessionOptions {
  /** Signs the session cookie; an array rotates: the first signs, all verify. At least 32 characters each. */
  secret: string | string[];
  /** Cookie name. Default "connect.sid". */
  name?: string;
  /** Deprecated express-session alias of `name`. */
  key?: string;
  cookie?: CookieOptions | ((req: IncomingMessage) => CookieOptions);
  /** Send the cookie on every response, resetting its expiry. Default false. */
  rolling?: boolean;
  /** Refresh an unmodified session's expiry in the store on every request. Default true (as express-session). */
  resave?: boolean;
  /** Store (and send a cookie for) a new session nothing was written to. Default true (as express-session). */
  saveUninitialized?: boolean;
  /** What `req.session = null` / `delete req.session` means: keep the stored session, or destroy it. */
  unset?: 'keep' | 'destroy';
  /** Trust X-Forwarded-Proto for `cookie.secure`; default: Express's `trust proxy` setting. */
  proxy?: boolean;
  /** A shoal store, or a store URL (`redis://…`, `postgres://…`, `sqlite:…`, `memcached://…`). Default: in-memory. */
  store?: SessionStore | string;
  /** Ends a session after this much inactivity (server side). Default: cookie.maxAge, else 1 day. */
  idleTimeout?: string | number;
  /** Ends a session this long after it started, active or not. Default 30 days (or idleTimeout if longer). */
  absoluteTimeout?: string | number;
  /** Called exactly once per ended session for the whole cluster (see docs/sessions.md). */
  onSessionEnd?: SessionEndHandler;
  encryption?: EncryptionOptions | false;
  maxSize?: number;
  nearCache?: NearCacheOptions | false;
  nodeId?: string;
  /** Where sessions are counted (see SessionOptions.metrics): the process registry by default, `{ registry }`, or `false`. */
  metrics?: MetricsOption;
  /** Where the middleware reports what it cannot tell the client (a failed commit, a failed migration). Default: pino at info. */
  logger?: Logger;
  /**
   * An express-session store (e.g. connect-redis' RedisStore) whose sessions move over on a browser's
   * first request after the switch: its `s:`-signed cookie is verified with `secret`, the data is
   * copied into a new shoal session and the old entry is destroyed. The new id is derived from the
   * old one (keyed with the secret), so a browser's parallel first requests, on any node, all land
   * in that one session; the old cookie leads to it for a minute after the move, then nowhere.
   */
  migrateFrom?: LegacyStore;
}

const SUPPORTED = new Set([
  'secret',
  'name',
  'key',
  'cookie',
  'rolling',
  'resave',
  'saveUninitialized',
  'unset',
  'proxy',
  'store',
  'idleTimeout',
  'absoluteTimeout',
  'onSessionEnd',
  'encryption',
  'maxSize',
  'nearCache',
  'nodeId',
  'metrics',
  'logger',
  'migrateFrom',
]);

/** Why an express-session option has no counterpart, in one line each. */
const REFUSED: Record<string, string> = {
  genid:
    'shoal issues 128-bit random ids itself and never takes one from elsewhere; remove genid (keep what it encoded in a session property)',
};

/** Checks the options at start; every refusal names the option and says what to do. */
export function checkOptions(options: ExpressSessionOptions): void {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('shoal/express-session: pass an options object, e.g. session({ secret, store })');
  }
  for (const key of Object.keys(options)) {
    if ((options as unknown as Record<string, unknown>)[key] === undefined) continue;
    const refused = REFUSED[key];
    if (refused) throw new ConfigError(`shoal/express-session does not support the "${key}" option: ${refused}`);
    if (!SUPPORTED.has(key)) {
      const near = nearestName(key, SUPPORTED);
      throw new ConfigError(
        `shoal/express-session does not know the "${key}" option; ${near ? `did you mean "${near}"?` : 'see docs/adapters.md#express-session-drop-in for the supported ones'}`,
      );
    }
  }
  const secrets = secretsOf(options.secret);
  for (const s of secrets) {
    if (s.length < 32) {
      throw new ConfigError(
        `shoal/express-session: a "secret" is ${s.length} characters long; use at least 32 random characters (e.g. \`openssl rand -base64 48\`)`,
      );
    }
  }
  if (options.unset !== undefined && options.unset !== 'keep' && options.unset !== 'destroy') {
    throw new ConfigError(`shoal/express-session: "unset" must be "keep" or "destroy", got ${String(options.unset)}`);
  }
  if (typeof options.cookie === 'object' && options.cookie !== null) checkCookie(options.cookie);
  if (typeof options.store === 'string' && !isStoreUrl(options.store)) {
    throw new ConfigError(
      `shoal/express-session: "store" URL has an unknown scheme; use one of ${STORE_SCHEMES.join(' ')} (or pass a shoal store)`,
    );
  }
  const store: unknown = options.store;
  if (typeof store === 'object' && store !== null && !isSessionStore(store)) {
    throw new ConfigError(
      'shoal/express-session: "store" must be a shoal store or store URL (e.g. "redis://127.0.0.1:6379"); an express-session store writes whole objects and loses concurrent writes. To read the sessions it holds, pass it as "migrateFrom"',
    );
  }
  if (store !== undefined && store !== null && typeof store !== 'object' && typeof store !== 'string') {
    throw new ConfigError(
      `shoal/express-session: "store" is ${kindOf(store)}; pass a store URL (e.g. "redis://127.0.0.1:6379"), a shoal store, or leave it out for memory`,
    );
  }
  // Said when the middleware is made (the app's start), not as a 500 on every request once the store opens.
  const endless = options.onSessionEnd ? kindWithoutEnds(options.store) : undefined;
  if (endless) throw new ConfigError(`shoal/express-session: ${endsUnsupported(endless)}`);
  if (options.migrateFrom !== undefined && typeof options.migrateFrom?.get !== 'function') {
    throw new ConfigError(
      'shoal/express-session: "migrateFrom" must be an express-session store (with get and destroy)',
    );
  }
}

/** Cookie options are checked per request too when `cookie` is a function. */
export function checkCookie(cookie: CookieOptions): void {
  for (const key of Object.keys(cookie)) {
    if (!COOKIE_KEYS.has(key)) {
      throw new ConfigError(
        `shoal/express-session does not support the cookie option "${key}"; supported: ${[...COOKIE_KEYS].join(', ')}`,
      );
    }
  }
  if (cookie.maxAge !== undefined && cookie.maxAge !== null && typeof cookie.maxAge !== 'number') {
    throw new ConfigError('shoal/express-session: cookie.maxAge must be a number of milliseconds or null');
  }
}

export function secretsOf(secret: string | string[] | undefined): string[] {
  const list = Array.isArray(secret) ? secret : secret === undefined ? [] : [secret];
  if (list.length === 0) {
    throw new ConfigError(
      'shoal/express-session needs the "secret" option: one string, or an array (newest first) to rotate',
    );
  }
  for (const s of list) {
    if (typeof s !== 'string') {
      throw new ConfigError('shoal/express-session: "secret" must be a string or an array of strings');
    }
  }
  return list;
}

/** The kind of a store (or store URL) that cannot list ended sessions; undefined for one that can. */
function kindWithoutEnds(store: SessionStore | string | undefined): string | undefined {
  if (typeof store === 'string') return store.startsWith('memcached') ? 'memcached' : undefined;
  return store && !store.capabilities.lifecycle ? store.kind : undefined;
}
