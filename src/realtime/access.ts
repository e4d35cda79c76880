import { isInternalChannel, isPersonalChannel, userChannel } from '../protocol/channels.js';
import type { SessionManager } from '../session/manager.js';
import type { Connection } from './connection.js';
import type { GatewayOptions } from './gateway-options.js';
import { type Identity, sessionIdentity } from './identity.js';
import { sessionChannel } from './session-channel.js';

/**
 * May this identity join this channel? Its own `session:` and `user:` channels always; other
 * personal channels and internal ones never; a channel its token grants, yes; anything else is
 * the app's `authorize` to answer.
 */
export async function mayJoin(
  who: Identity,
  channel: string,
  authorize: GatewayOptions['authorize'],
): Promise<boolean> {
  if (who.sessionId !== null && channel === sessionChannel(who.sessionId)) return true;
  if (who.userId && channel === userChannel(who.userId)) return true;
  if (isPersonalChannel(channel) || isInternalChannel(channel)) return false;
  if (who.granted.includes(channel)) return true;
  if (!authorize) return false;
  return authorize(
    { sessionId: who.sessionId, userId: who.userId, attributes: who.attributes, source: who.source },
    channel,
  );
}

/** The channels an identity's connections join without asking. */
export function ownChannels(who: Identity): string[] {
  return [
    ...(who.sessionId !== null ? [sessionChannel(who.sessionId)] : []),
    ...(who.userId ? [userChannel(who.userId)] : []),
  ];
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
  const session = await sessions.load(c.sessionId);
  return session ? sessionIdentity(session) : null;
}
