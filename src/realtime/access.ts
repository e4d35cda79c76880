import { SessionValueError } from '../core/errors.js';
import { hashId } from '../core/ids.js';
import type { LogLine } from '../core/logger.js';
import { isInternalChannel, isPersonalChannel, userChannel } from '../protocol/channels.js';
import { loadSessionValues } from '../session/attribute-values.js';
import type { SessionManager } from '../session/manager.js';
import { type AuthorizeHook, authorizeContext } from './authorize-context.js';
import type { Connection } from './connection.js';
import { type Identity, sessionIdentity } from './identity.js';
import { sessionChannel } from './session-channel.js';

/**
 * May this identity join this channel? Its own `session:` and `user:` channels always; other
 * personal channels and internal ones never; a channel its token grants, yes; anything else is
 * the app's `authorize` to answer.
 */
export async function mayJoin(who: Identity, channel: string, authorize: AuthorizeHook | undefined): Promise<boolean> {
  if (isOwnSessionChannel(who, channel)) return true;
  if (who.userId && channel === userChannel(who.userId)) return true;
  if (isPersonalChannel(channel) || isInternalChannel(channel)) return false;
  if (who.granted.includes(channel)) return true;
  if (!authorize) return false;
  return authorize(authorizeContext(who), channel);
}

/**
 * The session channels an identity belongs to: its shoal session's, and the one of the app's own
 * session id a connect proxy answered, so `realtime.to({ session })` reaches a connection by either
 * id, joined and resumed like any channel (ordered, with offsets, replayed on another gateway).
 */
function ownSessionChannels(who: Identity): string[] {
  return [
    ...(who.sessionId !== null ? [sessionChannel(who.sessionId)] : []),
    ...(who.appSession !== undefined ? [sessionChannel(who.appSession)] : []),
  ];
}

function isOwnSessionChannel(who: Identity, channel: string): boolean {
  return channel.startsWith('session:') && ownSessionChannels(who).includes(channel);
}

/** The channels an identity's connections join without asking. */
export function ownChannels(who: Identity): string[] {
  return [...ownSessionChannels(who), ...(who.userId ? [userChannel(who.userId)] : [])];
}

/**
 * Who the connection is now, for a new access decision: a cookie connection's session read again
 * (its attributes may have changed; null when it ended), a token connection's identity as proved.
 */
export async function currentIdentity(
  c: Pick<Connection, 'identity' | 'sessionId'>,
  sessions: SessionManager,
): Promise<Identity | null> {
  if (c.identity.source !== 'cookie' || c.sessionId === null) return c.identity;
  const session = await loadSessionValues(sessions, c.sessionId);
  return session ? sessionIdentity(session) : null;
}

/**
 * The app's `authorize`, failing closed on a session value it cannot read: an attribute that does not
 * decode (damaged or altered in the store, refused by `validate`) denies the join and is logged, so
 * neither an allow-list nor a deny-list check lets a session in on it, and the client is told
 * `forbidden` rather than to retry an outage. Anything else it throws is handled as before.
 */
export function failingClosed(
  authorize: AuthorizeHook | undefined,
  log: (line: LogLine) => void,
): AuthorizeHook | undefined {
  if (!authorize) return undefined;
  return async (who, channel) => {
    try {
      return await authorize(who, channel);
    } catch (err) {
      if (!(err instanceof SessionValueError)) throw err;
      log({
        level: 'warn',
        msg: `authorize could not read the session (${err.message}); not allowed to join ${channel}`,
        channel,
        session: who.sessionId === null ? undefined : hashId(who.sessionId),
      });
      return false;
    }
  };
}
