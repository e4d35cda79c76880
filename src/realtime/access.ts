import { isInternalChannel, isPersonalChannel, userChannel } from '../protocol/channels.js';
import type { StoredSession } from '../stores/contract.js';
import type { GatewayOptions } from './gateway-options.js';
import { sessionChannel } from './session-channel.js';

/**
 * May this session join this channel? Its own `session:` and `user:` channels always; other
 * personal channels and internal ones never; anything else is the app's `authorize` to answer.
 */
export async function mayJoin(
  session: StoredSession,
  channel: string,
  authorize: GatewayOptions['authorize'],
): Promise<boolean> {
  if (channel === sessionChannel(session.id)) return true;
  if (session.meta.userId && channel === userChannel(session.meta.userId)) return true;
  if (isPersonalChannel(channel) || isInternalChannel(channel)) return false;
  if (!authorize) return false;
  return authorize({ sessionId: session.id, userId: session.meta.userId, attributes: session.attributes }, channel);
}

/** The channels a session's connections join without asking. */
export function ownChannels(session: StoredSession): string[] {
  const userId = session.meta.userId;
  return [sessionChannel(session.id), ...(userId ? [userChannel(userId)] : [])];
}
