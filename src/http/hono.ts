import type { Context, MiddlewareHandler } from 'hono';
import { StoreUnavailableError } from '../core/errors.js';
import type { SessionManager } from '../session/manager.js';
import type { SessionSchema } from '../session/options.js';
import type { Session } from '../session/session.js';
import { clientSummary } from './commit-before-headers.js';
import { sessionFailure } from './failure.js';

/** `new Hono<{ Variables: SessionVariables<YourSchema> }>()` types `c.get('session')`. */
export type SessionVariables<T extends SessionSchema = SessionSchema> = { session: Session<T> };

/** The Hono env the middleware needs (merge it with your own Bindings/Variables). */
export type SessionEnv<T extends SessionSchema = SessionSchema> = { Variables: SessionVariables<T> };

export interface HonoSessionOptions {
  /**
   * The client address for the session's client summary. Default: the socket
   * address under @hono/node-server; other runtimes (or a trusted proxy's
   * X-Forwarded-For) need this.
   */
  clientAddress?: (c: Context) => string | undefined;
}

/**
 * Hono middleware: `app.use(session(manager))`, then `c.get('session')`.
 * The handler's Response is only a value until this middleware returns it, so
 * committing after `next()` finishes before any header reaches the client.
 */
export function session<T extends SessionSchema>(
  manager: SessionManager<T>,
  options: HonoSessionOptions = {},
): MiddlewareHandler<SessionEnv<T>> {
  const address = options.clientAddress ?? nodeServerAddress;
  return async (c, next) => {
    const s = manager.open(c.req.header('cookie'), {
      client: clientSummary(c.req.header('user-agent'), address(c as unknown as Context)),
    });
    c.set('session', s);
    await next();
    let cookie: string | undefined;
    try {
      // Fail closed: after an outage in the handler nothing is saved and the client learns why.
      if (c.error instanceof StoreUnavailableError) throw c.error;
      await s.commit();
      cookie = manager.setCookieHeader(s);
    } catch (err) {
      const f = sessionFailure(err);
      void c.res.body?.cancel().catch(() => {}); // a body the client will never read
      c.res = undefined; // otherwise the setter copies the handler's headers into ours
      c.res = new Response(f.body, { status: f.status, headers: f.headers });
      return;
    }
    if (cookie) {
      c.header('Set-Cookie', cookie, { append: true });
      // A response that sets or clears the session cookie must never be cached by a proxy.
      c.header('Cache-Control', 'no-store');
    }
  };
}

/** @hono/node-server passes { incoming } as the env; elsewhere there is no socket to ask. */
function nodeServerAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}
