import type { Context, MiddlewareHandler } from 'hono';
import { BusUnavailableError, LockTimeoutError, StoreUnavailableError } from '../core/errors.js';
import type { LockContext, LockOptions } from '../session/lock.js';
import type { SessionManager } from '../session/manager.js';
import type { SessionSchema } from '../session/options.js';
import type { Session } from '../session/session.js';
import {
  answeredStatus,
  busFailure,
  droppedOnFailure,
  type FailureAnswer,
  lockFailure,
  sessionFailure,
} from './failure.js';
import { checkManager } from './misuse.js';
import { commitScopesNow, openScopes } from './scopes.js';

/**
 * `new Hono<{ Variables: SessionVariables<YourSchema> }>()` types `c.get('session')`;
 * `SessionVariables<YourSchema, YourClientSchema>` adds `c.get('client')`.
 */
export type SessionVariables<T extends SessionSchema = SessionSchema, C extends SessionSchema = never> = {
  session: Session<T>;
} & ([C] extends [never] ? unknown : { client: Session<C> });

/** The Hono env the middleware needs (merge it with your own Bindings/Variables). */
export type SessionEnv<T extends SessionSchema = SessionSchema, C extends SessionSchema = never> = {
  Variables: SessionVariables<T, C>;
};

/** What sessionLock() puts in `c.get('sessionLock')`. */
export type SessionLockVariables = { session: Session; sessionLock: LockContext & { name: string } };

export interface HonoSessionOptions<C extends SessionSchema = never> {
  /**
   * The client address for the session's client summary. Default: the socket
   * address under @hono/node-server; other runtimes (or a trusted proxy's
   * X-Forwarded-For) need this.
   */
  clientAddress?: (c: Context) => string | undefined;
  /** A client-scope manager (defineClientScope): `c.get('client')` holds long-lived per-browser data. */
  client?: SessionManager<C>;
}

/**
 * Hono middleware: `app.use(session(manager))`, then `c.get('session')`.
 * The handler's Response is only a value until this middleware returns it, so
 * committing after `next()` finishes before any header reaches the client.
 */
export function session<T extends SessionSchema, C extends SessionSchema = never>(
  manager: SessionManager<T>,
  options: HonoSessionOptions<C> = {},
): MiddlewareHandler<SessionEnv<T, C>> {
  checkManager(manager, 'app.use(session(sessions))');
  if (options.client !== undefined) checkManager(options.client, 'session(sessions, { client: clients })');
  const address = options.clientAddress ?? nodeServerAddress;
  return async (c, next) => {
    const scopes = openScopes(
      manager,
      options.client,
      cookieHeaderOf(c as unknown as Context),
      c as unknown as Context,
      userAgentOf,
      address,
    );
    const vars = c as unknown as Context<{ Variables: { session: Session<T>; client: Session<C> } }>;
    vars.set('session', scopes.session);
    if (scopes.client) vars.set('client', scopes.client);
    await next();
    let cookies: string[];
    try {
      // Fail closed: after an outage in the handler nothing is saved and the client learns why.
      if (c.error instanceof StoreUnavailableError) throw c.error;
      // A lock timeout answers 409 and a publish that found the bus down 503 below, whatever the app's onError made of them.
      const pending = commitScopesNow(manager, options.client, scopes, answeredStatus(c.error, c.res.status));
      cookies = Array.isArray(pending) ? pending : await pending;
    } catch (err) {
      replaceResponse(c as unknown as Context, sessionFailure(err));
      return;
    }
    // A handler's session.lock() that timed out answers 409, like a locked route does.
    if (c.error instanceof LockTimeoutError) replaceResponse(c as unknown as Context, lockFailure(c.error));
    // A publish that found the bus unavailable answers 503 + Retry-After, whatever the app's onError made of it.
    else if (c.error instanceof BusUnavailableError) replaceResponse(c as unknown as Context, busFailure(c.error));
    for (const cookie of cookies) c.header('Set-Cookie', cookie, { append: true });
    // A response that sets or clears the session cookie must never be cached by a proxy.
    if (cookies.length) c.header('Cache-Control', 'no-store');
  };
}

/**
 * Per-route lock: `app.post('/checkout', sessionLock('checkout'), handler)` after
 * `app.use(session(sessions))`. Requests of one session through routes locked with
 * the same name run one at a time across the cluster. The session is committed
 * before the lock goes back, so the next holder reads this one's writes.
 * `c.get('sessionLock')` carries the fencing token; 409 when `wait` runs out.
 */
export function sessionLock(
  name: string,
  options: LockOptions = {},
): MiddlewareHandler<{ Variables: SessionLockVariables }> {
  return async (c, next) => {
    const s = c.get('session');
    let held: Awaited<ReturnType<Session['acquireLock']>>;
    try {
      held = await s.acquireLock(name, options);
    } catch (err) {
      if (!(err instanceof LockTimeoutError)) throw err;
      const f = lockFailure(err);
      return c.body(f.body, f.status, f.headers);
    }
    c.set('sessionLock', { name, fencingToken: held.fencingToken });
    try {
      await next();
      // A failed commit is reported by session(): commit() is memoised, so it sees the same error.
      // A server error commits nothing (see commitScopesNow), so the next holder reads none of it.
      const failed = c.error instanceof StoreUnavailableError || c.error instanceof BusUnavailableError;
      if (!failed && c.res.status < 500) await s.commit().catch(() => {});
    } finally {
      await held.release();
    }
  };
}

function replaceResponse(c: Context, f: FailureAnswer): void {
  const before = c.res;
  void before.body?.cancel().catch(() => {}); // a body the client will never read
  const headers = new Headers(f.headers);
  // What middleware ahead of the session set (CORS, a request id) stays; the failed body's own headers go.
  for (const [name, value] of before.headers)
    if (!droppedOnFailure(name) && !headers.has(name)) headers.append(name, value);
  c.res = undefined; // otherwise the setter copies every one of the handler's headers into ours
  c.res = new Response(f.body, { status: f.status, headers });
}

/** What @hono/node-server passes as the env: the node request the Hono one was made from. */
type NodeServerEnv = {
  incoming?: { headers?: Record<string, string | string[] | undefined>; socket?: { remoteAddress?: string } };
};

function incomingOf(c: Context): NodeServerEnv['incoming'] {
  return (c.env as NodeServerEnv | undefined)?.incoming;
}

/**
 * The Cookie header. Under @hono/node-server it is read off the node request: `c.req.header()` first
 * builds a Headers object of every header of the request, a visible share of a session read there.
 */
function cookieHeaderOf(c: Context): string | undefined {
  const headers = incomingOf(c)?.headers;
  return headers ? (headers.cookie as string | undefined) : c.req.header('cookie');
}

/** @hono/node-server passes { incoming } as the env; elsewhere there is no socket to ask. */
function nodeServerAddress(c: Context): string | undefined {
  return incomingOf(c)?.socket?.remoteAddress;
}

function userAgentOf(c: Context): string | undefined {
  const headers = incomingOf(c)?.headers;
  return headers ? (headers['user-agent'] as string | undefined) : c.req.header('user-agent');
}
