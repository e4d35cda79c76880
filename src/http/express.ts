import type { ErrorRequestHandler, RequestHandler } from 'express';
import { StoreUnavailableError } from '../core/errors.js';
import type { SessionManager } from '../session/manager.js';
import type { SessionSchema } from '../session/options.js';
import type { Session } from '../session/session.js';
import { clientSummary, commitBeforeHeaders } from './commit-before-headers.js';

declare global {
  namespace Express {
    interface Request {
      /** The shoal session of this request (typed per app with SessionFor<typeof sessions>). */
      session: Session;
    }
  }
}

/**
 * Express middleware: `app.use(session(manager))`, then `req.session` in handlers.
 * The session commits before the response headers leave.
 */
export function session<T extends SessionSchema>(manager: SessionManager<T>): RequestHandler {
  return (req, res, next) => {
    const s = manager.open(req.headers.cookie, { client: clientSummary(req.headers['user-agent'], req.ip) });
    req.session = s as unknown as Session;
    commitBeforeHeaders(res, async () => {
      await s.commit();
      return manager.setCookieHeader(s);
    });
    next();
  };
}

/** The typed session of a request: `sessionOf(req, sessions)` → Session<YourSchema>. */
export function sessionOf<T extends SessionSchema>(req: { session: Session }, _manager: SessionManager<T>): Session<T> {
  return req.session as unknown as Session<T>;
}

/** Answers 503 with a clear body when the session store is down (fail closed, never anonymous). */
export function sessionErrors(): ErrorRequestHandler {
  return (err, _req, res, next) => {
    if (!(err instanceof StoreUnavailableError)) return next(err);
    res
      .status(503)
      .set('Retry-After', '1')
      .json({ error: err.code, message: 'The session store is unavailable. Retry shortly.' });
  };
}
