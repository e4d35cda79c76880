/**
 * Compile-time check (npm run typecheck): the drop-in's session object fits @types/express-session's
 * Session, so apps keep their typings. One known gap, in @types itself: it types cookie.maxAge as
 * `number | undefined`, while express-session (and the drop-in) return null for a browser-session cookie.
 */
import type expressSession from 'express-session';
import type { DropInSession, SessionCookie } from 'shoal/express-session';

type WithCookie<C> = Omit<
  expressSession.Session,
  'cookie' | 'touch' | 'resetMaxAge' | 'save' | 'reload' | 'destroy' | 'regenerate'
> & {
  cookie: C;
};
export const session = (s: DropInSession): WithCookie<SessionCookie> => s;
export const methods = (s: DropInSession) => {
  const m: Pick<expressSession.Session, 'id'> & {
    [K in 'touch' | 'resetMaxAge' | 'save' | 'reload' | 'destroy' | 'regenerate']: (...args: never[]) => unknown;
  } = s;
  return m;
};
export const cookie = (c: SessionCookie): Omit<expressSession.Cookie, 'maxAge'> & { maxAge: number | null } => c;
