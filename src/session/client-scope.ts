import { parseDuration } from '../core/duration.js';
import { SessionManager } from './manager.js';
import type { SessionOptions, SessionSchema } from './options.js';

export interface ClientScopeOptions<T extends SessionSchema = SessionSchema>
  extends Omit<SessionOptions<T>, 'onSessionStart' | 'onSessionEnd' | 'scope'> {
  /** Forgotten after this much inactivity. Default 90d. */
  idleTimeout?: string | number;
  /** Forgotten this long after the browser first wrote, whatever the activity. Default 400d (browsers keep cookies at most 400 days). */
  absoluteTimeout?: string | number;
}

/**
 * The client scope (like Lucee's): long-lived per-browser data — preferences,
 * "seen the tour", a device id — under its own cookie (`__Host-shoal-client`,
 * or `shoal.client` without Secure) that survives logout and login rotation.
 * It is a SessionManager over its own store namespace, so it has the same
 * delta, counter, update and lock guarantees, and no lifecycle events.
 *
 * `defineClientScope({ store: await createStore(url, { namespace: 'client' }) })`
 */
export function defineClientScope<T extends SessionSchema = SessionSchema>(
  given: ClientScopeOptions<T>,
): SessionManager<T> {
  // Left out in plain JavaScript: the manager then says which options it needs.
  const options = given ?? ({} as ClientScopeOptions<T>);
  const secure = options.cookie?.secure ?? true;
  // Explicit values: the session's timeouts (SHOAL_IDLE_TIMEOUT / SHOAL_ABSOLUTE_TIMEOUT on CLI nodes) never apply here.
  const absoluteTimeout = options.absoluteTimeout ?? '400d';
  const absoluteMs = parseDuration(absoluteTimeout, 'client absoluteTimeout');
  return new SessionManager<T>({
    ...options,
    scope: 'client',
    idleTimeout: options.idleTimeout ?? '90d',
    absoluteTimeout,
    cookie: {
      name: secure ? '__Host-shoal-client' : 'shoal.client',
      // A persistent cookie: the browser keeps it across restarts until the scope's absolute end.
      maxAge: Math.floor(absoluteMs / 1000),
      ...options.cookie,
    },
    // Nothing listens for client ends; sweeping only reclaims storage, so once a minute is plenty.
    sweep: { interval: '1m', ...options.sweep },
  });
}
