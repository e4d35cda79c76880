import type { SessionManager } from '../session/manager.js';
import type { SessionSchema } from '../session/options.js';
import type { Session } from '../session/session.js';
import { type HeldRequest, startContext } from './start-context.js';

/** A request's session and, when the app configured one, its client scope, with their managers. */
export interface Scopes<T extends SessionSchema, C extends SessionSchema> {
  session: Session<T>;
  client: Session<C> | undefined;
  sessions: SessionManager<T>;
  clients: SessionManager<C> | undefined;
  /** The session's start context: it reads the request if a session is started. */
  start: HeldRequest<unknown>;
}

/** Opens a request's scopes; the user agent and address are read only if a session is created (see startContext). */
export function openScopes<T extends SessionSchema, C extends SessionSchema, R>(
  sessions: SessionManager<T>,
  clients: SessionManager<C> | undefined,
  cookieHeader: string | undefined,
  request: R,
  userAgent: (request: R) => string | undefined,
  ip: (request: R) => string | undefined,
): Scopes<T, C> {
  const start = startContext(request, userAgent, ip);
  return { session: sessions.open(cookieHeader, start), client: clients?.open(cookieHeader), sessions, clients, start };
}

/** commitScopesNow() of scopes by their own managers: a module-level function, so no closure per request. */
export function commitOpenScopes<T extends SessionSchema, C extends SessionSchema>(
  scopes: Scopes<T, C>,
  status: number,
): string[] | Promise<string[]> {
  return commitScopesNow(scopes.sessions, scopes.clients, scopes, status);
}

/**
 * Commits the session, then the client scope (skipped if the session failed:
 * the response becomes an error, and nothing of the request should stick),
 * and returns the Set-Cookie values the response needs. An untouched scope
 * costs no store call, and when neither scope has anything to write or touch
 * (most reads) the answer comes at once, without a promise: the adapter can
 * send the response in the same turn.
 *
 * A server error (`status` 5xx: the handler threw, or the store or bus failed) commits nothing: the
 * request stopped part way, and what it changed so far must not stick. What a request did at once
 * (increment, update, destroy, regenerate) is already stored; only its pending changes are dropped.
 */
export function commitScopesNow<T extends SessionSchema, C extends SessionSchema>(
  sessions: SessionManager<T>,
  clients: SessionManager<C> | undefined,
  scopes: Scopes<T, C>,
  status: number,
): string[] | Promise<string[]> {
  if (status >= 500) return cookiesOf(sessions, clients, scopes);
  const own = scopes.session.commitIfNeeded();
  if (own) return own.then(() => afterSession(sessions, clients, scopes));
  return afterSession(sessions, clients, scopes);
}

function afterSession<T extends SessionSchema, C extends SessionSchema>(
  sessions: SessionManager<T>,
  clients: SessionManager<C> | undefined,
  scopes: Scopes<T, C>,
): string[] | Promise<string[]> {
  const client = clients && scopes.client ? scopes.client.commitIfNeeded() : undefined;
  if (client) return client.then(() => cookiesOf(sessions, clients, scopes));
  return cookiesOf(sessions, clients, scopes);
}

function cookiesOf<T extends SessionSchema, C extends SessionSchema>(
  sessions: SessionManager<T>,
  clients: SessionManager<C> | undefined,
  scopes: Scopes<T, C>,
): string[] {
  const cookies: string[] = [];
  const own = sessions.setCookieHeader(scopes.session);
  if (own) cookies.push(own);
  const client = clients && scopes.client ? clients.setCookieHeader(scopes.client) : undefined;
  if (client) cookies.push(client);
  return cookies;
}
