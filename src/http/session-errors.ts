import type { ServerResponse } from 'node:http';
import { BusUnavailableError, ConfigError, LockTimeoutError, StoreUnavailableError } from '../core/errors.js';
import { busFailure, lockFailure, sessionFailure, writeFailure } from './failure.js';

/**
 * An Express error handler (four arguments), written without Express's types so that
 * `shoal/express-session` can export it without `shoal/express`'s declaration of `req.session`,
 * which `@types/express-session` declares too.
 */
export type SessionErrorHandler = (
  err: unknown,
  req: unknown,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void;

/**
 * Answers 503 with a clear body when the session store or the message bus is down (fail
 * closed, never anonymous), and 409 when a session.lock() in a handler timed out.
 */
export function sessionErrors(...misuse: unknown[]): SessionErrorHandler {
  // Registered itself, Express would take it for plain middleware that never calls next: every request would hang.
  if (misuse.length > 0) {
    throw new ConfigError('sessionErrors is a factory: register app.use(sessionErrors()), after your routes');
  }
  return (err, _req, res, next) => {
    // Half an answer cannot be replaced: Express's own handler cuts the connection.
    if (res.headersSent) return next(err);
    if (err instanceof LockTimeoutError) return writeFailure(res, lockFailure(err));
    // A publish while the bus fails over is as retryable as a store call: 503, never a 500.
    if (err instanceof BusUnavailableError) return writeFailure(res, busFailure(err));
    if (!(err instanceof StoreUnavailableError)) return next(err);
    writeFailure(res, sessionFailure(err));
  };
}
