import type { SessionManager } from '../session/manager.js';
import type { SessionSchema } from '../session/options.js';
import type { Session } from '../session/session.js';
import type { HeldCommit } from './commit-before-headers.js';
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

/**
 * The commit of a request's scopes for commitBeforeHeaders, by the scopes' own managers: one object
 * for every request, so a hold costs no closure.
 */
export const scopesCommit: HeldCommit<Scopes<SessionSchema, SessionSchema>> = {
  start: (scopes, status) =>
    status >= 500 ? undefined : pendingCommit(scopes.session, scopes.clients && scopes.client),
  cookies: (scopes) => cookiesOf(scopes.sessions, scopes.clients, scopes),
};

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
  const pending = status >= 500 ? undefined : pendingCommit(scopes.session, clients && scopes.client);
  if (pending) return pending.then(() => cookiesOf(sessions, clients, scopes));
  return cookiesOf(sessions, clients, scopes);
}

/**
 * The session's commit, then the client scope's: undefined when neither has anything to write. With
 * no client scope it is the session's own promise, not a further one chained to it.
 */
function pendingCommit(
  session: { commitIfNeeded(): Promise<void> | undefined },
  client: { commitIfNeeded(): Promise<void> | undefined } | undefined,
): Promise<void> | undefined {
  const own = session.commitIfNeeded();
  if (!client) return own;
  if (own) return own.then(() => client.commitIfNeeded());
  return client.commitIfNeeded();
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
