/**
 * `shoal/express-session`: express-session's interface over shoal's sessions. Existing Express
 * apps (passport, connect-flash, `req.session.views++`) switch by changing one import, and
 * stop losing writes when requests race: only the properties a request changed are saved.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDuration } from '../core/duration.js';
import { defaultLogger } from '../core/logger.js';
import { SessionManager } from '../session/manager.js';
import type { SessionStore } from '../stores/contract.js';
import { createStore } from '../stores/index.js';
import { memoryStore } from '../stores/memory.js';
import { commitBeforeHeaders } from './commit-before-headers.js';
import type { CookieOptions } from './express-session-cookie.js';
import { checkCookie, checkOptions, type ExpressSessionOptions, secretsOf } from './express-session-options.js';
import { type DropInConfig, type DropInRequest, RequestSession } from './express-session-request.js';
import { startContext, userAgentOf } from './start-context.js';

export { type CookieOptions, SessionCookie, type StoredCookie } from './express-session-cookie.js';
export { DropInSession } from './express-session-object.js';
export type { ExpressSessionOptions, LegacyStore } from './express-session-options.js';
export { ShoalStore, type ShoalStoreOptions } from './express-session-store.js';
// The error handler for the routes after the drop-in: 503 + Retry-After when the store is down.
export { type SessionErrorHandler, sessionErrors } from './session-errors.js';

const DAY_MS = 86_400_000;

/** The middleware, plus what an app needs to manage it. */
export interface SessionMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void;
  /** Resolves once the store (given as a URL) is open; rejects if it cannot be. */
  readonly ready: Promise<SessionManager>;
  /** Stops the sweeper, and closes the store if the middleware opened it from a URL or by default. */
  close(): Promise<void>;
}

/**
 * `app.use(session({ secret, store: 'redis://…', resave: false, saveUninitialized: false }))`:
 * the same options and `req.session` as express-session. Options shoal does not support throw
 * here, naming the option.
 */
export function session(options: ExpressSessionOptions): SessionMiddleware {
  checkOptions(options);
  const secrets = secretsOf(options.secret);
  const cookie = options.cookie ?? {};
  const staticMaxAge = typeof cookie === 'object' ? cookie.maxAge : undefined;
  const idleTimeout = options.idleTimeout ?? (typeof staticMaxAge === 'number' ? staticMaxAge : DAY_MS);
  const ownsStore = typeof options.store !== 'object';
  const opened: Promise<SessionStore> =
    typeof options.store === 'string' ? createStore(options.store) : Promise.resolve(options.store ?? memoryStore());
  // Read here, so that `idleTimeout: '90d'` raises absoluteTimeout's default just as 90 days in ms does.
  const idleMs = parseDuration(idleTimeout, 'idleTimeout');
  const ready = opened.then((store) => {
    return new SessionManager({
      store,
      secrets,
      cookie: { name: options.name ?? options.key ?? 'connect.sid', secure: false },
      idleTimeout,
      absoluteTimeout: options.absoluteTimeout ?? Math.max(30 * DAY_MS, idleMs),
      ...(options.onSessionEnd ? { onSessionEnd: options.onSessionEnd } : {}),
      ...(options.encryption !== undefined ? { encryption: options.encryption } : {}),
      ...(options.maxSize !== undefined ? { maxSize: options.maxSize } : {}),
      ...(options.nearCache !== undefined ? { nearCache: options.nearCache } : {}),
      ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
      ...(options.metrics !== undefined ? { metrics: options.metrics } : {}),
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
    });
  });
  // Surfaced to every request (and to whoever awaits `ready`), never as an unhandled rejection.
  ready.catch(() => {});

  let config: DropInConfig | undefined;
  const configured = ready.then((manager) => {
    const logger = options.logger ?? defaultLogger();
    config = {
      manager,
      name: manager.cookieName,
      secrets,
      rolling: Boolean(options.rolling),
      resave: options.resave ?? true,
      saveUninitialized: options.saveUninitialized ?? true,
      unsetDestroy: options.unset === 'destroy',
      proxy: options.proxy,
      migrateFrom: options.migrateFrom,
      logger,
      commit: {
        start: finishRequest,
        cookies: finishedCookies,
        failed: (err) => logger.error({ err }, 'saving the session failed; the client got an error response instead'),
      },
    };
    return config;
  });
  configured.catch(() => {});

  const handle = async (c: DropInConfig, req: DropInRequest, res: ServerResponse): Promise<boolean> => {
    const cookieOptions = typeof cookie === 'function' ? cookie(req) : cookie;
    if (typeof cookie === 'function') checkCookie(cookieOptions);
    // As express-session: no session outside the cookie's path (every path is inside '/', the default).
    const cookiePath = cookieOptions.path ?? '/';
    if (cookiePath !== '/' && !pathOf(req).startsWith(cookiePath)) return false;
    const ctx = startContext(req, userAgentOf, addressOf);
    const request = new RequestSession(c, req, ctx, cookieOptions as CookieOptions);
    await request.open();
    commitBeforeHeaders(res, c.commit, request);
    return true;
  };

  const middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    const r = req as DropInRequest;
    // Asked of the request's own properties first: reading a name an Express request lacks walks its whole prototype chain.
    if (Object.hasOwn(r, 'session') && r.session) {
      next(); // already handled (the middleware mounted twice)
      return;
    }
    const run = (c: DropInConfig) => handle(c, r, res).then(() => next(), next);
    if (config) void run(config);
    else configured.then(run, next);
  };

  return Object.assign(middleware, {
    ready,
    async close() {
      const manager = await ready.catch(() => undefined);
      await manager?.close();
      if (manager && ownsStore) await (await opened).close();
    },
  });
}

export default session;

/** The request's finish, for commitBeforeHeaders: it gives the cookies to send. */
function finishRequest(request: RequestSession): Promise<string[]> {
  return request.finish();
}

function finishedCookies(_request: RequestSession, cookies: unknown): string[] {
  return cookies as string[];
}

/** The request's path, its query left out. */
function pathOf(req: DropInRequest): string {
  return (req.originalUrl ?? req.url ?? '/').split('?')[0] ?? '/';
}

/** Express's req.ip (its trust-proxy setting applied) when there is one, else the socket's address. */
function addressOf(req: IncomingMessage): string | undefined {
  return (req as { ip?: string }).ip ?? req.socket.remoteAddress;
}
