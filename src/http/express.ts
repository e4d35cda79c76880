import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { ConfigError, LockTimeoutError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import type { RequestSession } from '../session/data.js';
import type { LockContext, LockOptions } from '../session/lock.js';
import type { SessionManager } from '../session/manager.js';
import type { SessionSchema } from '../session/options.js';
import type { Session } from '../session/session.js';
import { commitBeforeHeaders, type HeldCommit } from './commit-before-headers.js';
import { lockFailure, writeFailure } from './failure.js';
import { checkManager, looksLikeRequest } from './misuse.js';
import { RequestSlot } from './request-slot.js';
import { openScopes, type Scopes, scopesCommit } from './scopes.js';
import { sessionErrors as handleSessionErrors } from './session-errors.js';
import { userAgentOf } from './start-context.js';

/** The lock a route holds through sessionLock(name). */
export interface SessionLockInfo extends LockContext {
  name: string;
}

declare global {
  namespace Express {
    interface Request {
      /**
       * The shoal session of this request, typed by the app's SessionData
       * (`declare module 'shoal' { interface SessionData { … } }`) or with sessionOf(req, sessions).
       */
      session: RequestSession;
      /** The client scope, when session(sessions, { client }) was given one (typed with clientOf(req, clients)). */
      client?: Session;
      /** Set by sessionLock(name) while the route holds the lock. */
      sessionLock?: SessionLockInfo;
    }
  }
}

export interface ExpressSessionOptions<C extends SessionSchema> {
  /** A client-scope manager (defineClientScope): `req.client` holds long-lived per-browser data. */
  client?: SessionManager<C>;
  /**
   * Told when a request's commit failed and its response became a 503 (store unavailable) or 500
   * instead of the handler's: the failure happens as the response leaves, past Express's error
   * handlers, so this is where to log or count it.
   */
  onError?: (err: unknown) => void;
}

/**
 * Express middleware: `app.use(session(manager))`, then `req.session` in handlers.
 * The session (and client scope) commit before the response headers leave.
 */
export function session<T extends SessionSchema, C extends SessionSchema = SessionSchema>(
  manager: SessionManager<T>,
  options: ExpressSessionOptions<C> = {},
): RequestHandler {
  checkManager(manager, 'app.use(session(sessions))');
  const clients = options.client;
  if (clients !== undefined) checkManager(clients, 'session(sessions, { client: clients })');
  const onError = options.onError;
  if (onError !== undefined && typeof onError !== 'function') {
    throw new ConfigError(
      `session(sessions, { onError }) takes a function called with the error of a failed commit, e.g. { onError: (err) => logger.error(err) }; got ${kindOf(onError)}`,
    );
  }
  // Made once per middleware: a request's hold costs no closure.
  const lettingGo = onError ? { ...commitLettingGo, failed: onError } : commitLettingGo;
  const plain = onError ? { ...scopesCommit, failed: onError } : scopesCommit;
  return (req, res, next) => {
    const scopes = openScopes(manager, clients, req.headers.cookie, req, userAgentOf, ipOf);
    // node's requests have a `client` of their own already (the socket's old alias): replacing it adds nothing.
    if (scopes.client) req.client = scopes.client as unknown as Session;
    if (sessionSlot.keep(req, scopes)) {
      commitBeforeHeaders(res, lettingGo, scopes);
    } else {
      req.session = scopes.session as unknown as RequestSession;
      commitBeforeHeaders(res, plain, scopes);
    }
    next();
  };
}

// ---- req.session, kept off the request

/**
 * On Express's requests `req.session` is an accessor reading the request's scopes (see RequestSlot).
 * Once the commit is over the start context stops holding the request, so the kept value does not
 * reach its key; reading req.session afterwards holds it again, for a session started after the
 * response (it still records its client).
 */
type RequestScopes = Scopes<SessionSchema, SessionSchema>;
const sessionSlot = new RequestSlot<RequestScopes>('session', (scopes, req) => {
  scopes.start.hold(req);
  return scopes.session;
});

/** The scopes' commit, letting go of the request once it is over (see RequestStart.letGo). */
const commitLettingGo: HeldCommit<RequestScopes> = {
  ...scopesCommit,
  released: (scopes) => scopes.start.letGo(),
};

function ipOf(req: Request): string | undefined {
  return req.ip;
}

/**
 * Per-route lock: `app.post('/checkout', sessionLock('checkout'), handler)`.
 * Requests of one session through routes locked with the same name run one at a
 * time across the cluster; the lock is held until the response is done (after
 * the commit), so the next holder reads this one's writes. `req.sessionLock`
 * carries the fencing token. A lock that cannot be had within `wait` answers 409.
 */
export function sessionLock(name: string, options: LockOptions = {}): RequestHandler {
  // Registered without a name (app.post('/x', sessionLock, …)) it would make a handler and never call next.
  if (typeof name !== 'string') {
    throw new ConfigError(
      `sessionLock(name) takes the lock's name, e.g. app.post('/checkout', sessionLock('checkout'), handler); got ${looksLikeRequest(name) ? 'a request: it was registered without being called' : kindOf(name)}`,
    );
  }
  return (req, res, next) => {
    if (!req.session) {
      return next(new ConfigError('sessionLock() needs req.session: register app.use(session(sessions)) before it'));
    }
    let closed = false;
    let release: (() => Promise<void>) | undefined;
    res.once('close', () => {
      closed = true;
      void release?.();
    });
    req.session.acquireLock(name, options).then(
      (held) => {
        release = held.release;
        req.sessionLock = { name, fencingToken: held.fencingToken };
        // The client went away while this request waited: nobody will answer, give the lock back.
        if (closed) void held.release();
        else next();
      },
      (err: unknown) => {
        if (!(err instanceof LockTimeoutError)) return next(err);
        writeFailure(res, lockFailure(err));
      },
    );
  };
}

/** The typed session of a request: `sessionOf(req, sessions)` → Session<YourSchema>. */
export function sessionOf<T extends SessionSchema>(
  req: { session: RequestSession },
  _manager: SessionManager<T>,
): Session<T> {
  return req.session as unknown as Session<T>;
}

/** The typed client scope of a request: `clientOf(req, clients)` → Session<YourClientSchema>. */
export function clientOf<C extends SessionSchema>(req: { client?: Session }, _manager: SessionManager<C>): Session<C> {
  if (!req.client) {
    throw new ConfigError(
      'req.client is not set: pass the client-scope manager to the middleware, session(sessions, { client })',
    );
  }
  return req.client as unknown as Session<C>;
}

/**
 * Answers 503 with a clear body when the session store or the message bus is down (fail
 * closed, never anonymous), and 409 when a session.lock() in a handler timed out.
 */
export function sessionErrors(...misuse: unknown[]): ErrorRequestHandler {
  return handleSessionErrors(...misuse);
}
