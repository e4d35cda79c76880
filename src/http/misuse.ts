import { ConfigError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';

/**
 * Whether `value` is an incoming HTTP request: what a middleware factory receives when it is
 * registered itself (`app.use(session)`) instead of what it returns (`app.use(session(sessions))`).
 */
export function looksLikeRequest(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { headers?: unknown; method?: unknown };
  return typeof v.headers === 'object' && v.headers !== null && typeof v.method === 'string';
}

/**
 * Refuses what is not a session manager (what defineSession returns), checked by shape: an app may
 * load a second copy of shoal whose managers are another class. `usage` is the call as it should read.
 */
export function checkManager(manager: unknown, usage: string): void {
  if (looksLikeRequest(manager)) {
    throw new ConfigError(
      `the middleware was registered without being called: write ${usage}, calling it with the manager defineSession() returned`,
    );
  }
  const m = manager as { open?: unknown; setCookieHeader?: unknown } | null;
  if (typeof m === 'object' && m !== null && typeof m.open === 'function' && typeof m.setCookieHeader === 'function') {
    return;
  }
  throw new ConfigError(
    `${usage} takes the session manager that defineSession({ store, secrets }) from 'shoal' returns; got ${kindOf(manager)}`,
  );
}
