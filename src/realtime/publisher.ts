import type { Bus, BusMessage } from '../bus/contract.js';
import { hashId } from '../core/ids.js';
import {
  CHANNEL_RULE,
  INTERNAL_EVENT_PREFIX,
  isInternalChannel,
  isValidChannel,
  userChannel,
} from '../protocol/channels.js';

/** Published on `session:<id>` when the session ends: gateways close its sockets. */
export const SESSION_ENDED_EVENT = 'shoal:session-ended';

export type Target = string | { user: string } | { session: string };

/** Maps an app's event names to payload types: `createPublisher<{ 'order.shipped': { id: string } }>(bus)`. */
export type EventMap = Record<string, unknown>;

export function channelOf(target: Target): string {
  if (typeof target === 'string') return target;
  return 'user' in target ? userChannel(target.user) : sessionChannel(target.session);
}

/**
 * A session's channel is named after a hash of its id: channel names reach page
 * JavaScript (hello, subscribed, SSE ids) and the bus backend, the raw id must not.
 */
export function sessionChannel(sessionId: string): string {
  return `session:${hashId(sessionId)}`;
}

export interface Publisher<E extends EventMap = EventMap> {
  to(target: Target): { send<K extends keyof E & string>(event: K, data: E[K]): Promise<BusMessage> };
}

/**
 * What web nodes use to reach sockets held by any gateway:
 * `realtime.to({ user: 'alice' }).send('order.shipped', { id })`.
 * The message goes through the bus, gets its channel offset, and every gateway
 * with a subscriber on that channel delivers it.
 */
export function createPublisher<E extends EventMap = EventMap>(bus: Bus): Publisher<E> {
  return {
    to(target) {
      const channel = channelOf(target);
      if (!isValidChannel(channel)) {
        throw new TypeError(`"${channel}" is not a valid channel name: use ${CHANNEL_RULE}`);
      }
      if (isInternalChannel(channel)) {
        throw new TypeError(`"${channel}" is internal to shoal: publish to your own channels`);
      }
      return {
        send(event, data) {
          if (event.startsWith(INTERNAL_EVENT_PREFIX)) {
            throw new TypeError(`event names starting with "${INTERNAL_EVENT_PREFIX}" are reserved for shoal`);
          }
          return bus.publish(channel, { event, data: JSON.stringify(data ?? null) });
        },
      };
    },
  };
}

/** Tells every gateway to close the sockets of an ended session (logout, destroy, rotation, expiry). */
export function publishSessionEnded(bus: Bus, sessionId: string, reason: string): Promise<BusMessage> {
  return bus.publish(sessionChannel(sessionId), { event: SESSION_ENDED_EVENT, data: JSON.stringify({ reason }) });
}
