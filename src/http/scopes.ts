import type { SessionManager } from '../session/manager.js';
import type { SessionSchema, SessionStartContext } from '../session/options.js';
import type { Session } from '../session/session.js';

/** A request's session and, when the app configured one, its client scope. */
export interface Scopes<T extends SessionSchema, C extends SessionSchema> {
  session: Session<T>;
  client: Session<C> | undefined;
}

export function openScopes<T extends SessionSchema, C extends SessionSchema>(
  sessions: SessionManager<T>,
  clients: SessionManager<C> | undefined,
  cookieHeader: string | undefined,
  ctx: SessionStartContext,
): Scopes<T, C> {
  return { session: sessions.open(cookieHeader, ctx), client: clients?.open(cookieHeader) };
}

/**
 * Commits the session, then the client scope (skipped if the session failed:
 * the response becomes an error, and nothing of the request should stick),
 * and returns the Set-Cookie values the response needs. An untouched scope
 * costs no store call.
 */
export async function commitScopes<T extends SessionSchema, C extends SessionSchema>(
  sessions: SessionManager<T>,
  clients: SessionManager<C> | undefined,
  scopes: Scopes<T, C>,
): Promise<string[]> {
  await scopes.session.commit();
  const cookies: string[] = [];
  const own = sessions.setCookieHeader(scopes.session);
  if (own) cookies.push(own);
  if (clients && scopes.client) {
    await scopes.client.commit();
    const client = clients.setCookieHeader(scopes.client);
    if (client) cookies.push(client);
  }
  return cookies;
}
