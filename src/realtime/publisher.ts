import type { Bus, BusMessage } from '../bus/contract.js';
import { ConfigError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import {
  CHANNEL_RULE,
  INTERNAL_EVENT_PREFIX,
  isInternalChannel,
  isValidChannel,
  userChannel,
} from '../protocol/channels.js';
import {
  type ConnectionTarget,
  type DisconnectOptions,
  disconnectCommand,
  reauthorizeCommand,
  sendCommand,
  unsubscribeCommand,
} from './control-commands.js';
import {
  type ChannelsAnswer,
  type PresenceAnswer,
  type PresenceClient,
  type PresenceQueryOptions,
  queryChannels,
  queryPresence,
} from './presence-query.js';
import {
  appChannel,
  BadCallError,
  broadcast,
  type HistoryAnswer,
  type HistoryMessage,
  type HistoryOptions,
  readHistory,
} from './server-calls.js';
import { sessionChannel } from './session-channel.js';

export type {
  ChannelsAnswer,
  ConnectionTarget,
  DisconnectOptions,
  HistoryAnswer,
  HistoryMessage,
  HistoryOptions,
  PresenceAnswer,
  PresenceClient,
  PresenceQueryOptions,
  PresenceStats,
};

/** How many users and connections a channel has on the gateways that answered. */
interface PresenceStats {
  users: number;
  connections: number;
  gateways: number;
  complete: boolean;
}

export { sessionChannel };

/** Published on `session:<id>` when the session ends: gateways close its sockets. */
export const SESSION_ENDED_EVENT = 'shoal:session-ended';

export type Target = string | { user: string } | { session: string };

/** Maps an app's event names to payload types: `createPublisher<{ 'order.shipped': { id: string } }>(bus)`. */
export type EventMap = Record<string, unknown>;

export function channelOf(target: Target): string {
  if (typeof target === 'string') return target;
  return 'user' in target ? userChannel(target.user) : sessionChannel(target.session);
}

/** Plain JavaScript can pass anything to realtime.to(); channelOf would fail on it with a TypeError from inside. */
function checkTarget(target: unknown): void {
  if (typeof target === 'string') return;
  const t = target as { user?: unknown; session?: unknown } | null;
  if (typeof t === 'object' && t !== null && !Array.isArray(t)) {
    if ('user' in t && typeof t.user === 'string') return;
    if (!('user' in t) && typeof t.session === 'string') return;
  }
  const got =
    typeof t === 'object' && t !== null && !Array.isArray(t) && ('user' in t || 'session' in t)
      ? `its ${'user' in t ? 'user' : 'session'} is ${kindOf('user' in t ? t.user : t.session)}`
      : `got ${kindOf(target)}`;
  throw new ConfigError(
    `realtime.to(target) takes a channel name ('orders'), { user: String(user.id) } or { session: sessionId }; ${got}`,
  );
}

export interface Publisher<E extends EventMap = EventMap> {
  to(target: Target): { send<K extends keyof E & string>(event: K, data: E[K]): Promise<BusMessage> };
  /**
   * Closes every connection of a user or a session on every gateway, with `code` (default 4403:
   * the client does not reconnect; 4500–4999 are the app's own with the same meaning; 1012 has
   * it reconnect at once) and `reason`. Resolves once the command is on the bus.
   */
  disconnect(target: ConnectionTarget, options?: DisconnectOptions): Promise<void>;
  /** Removes a user's or a session's connections from a channel on every gateway; the client is told and does not rejoin. */
  unsubscribe(target: ConnectionTarget, channel: string): Promise<void>;
  /**
   * Runs `authorize` again for every current subscriber of the channel on every gateway: those
   * no longer allowed are removed from it now (told with `unsubscribed`, reason "forbidden").
   */
  reauthorize(channel: string): Promise<void>;
  /**
   * Who is in an app channel on any gateway, asked from here (a web node holds no connections):
   * every live gateway answers within `timeoutMs` (default 1000), else `complete` is false.
   * `clients: true` also lists each connection with the info the app lets it show.
   */
  presence(channel: string, options?: PresenceQueryOptions): Promise<PresenceAnswer>;
  /** The counts of `presence` (distinct users, connections) without the list. */
  presenceStats(channel: string, options?: { timeoutMs?: number }): Promise<PresenceStats>;
  /** One event to several app channels; every name is checked before the first is published. */
  broadcast<K extends keyof E & string>(channels: string[], event: K, data: E[K]): Promise<BusMessage[]>;
  /** A channel's history: the newest `limit` messages, or those after `since`, bounded by the bus's window. */
  history(channel: string, options?: HistoryOptions): Promise<HistoryAnswer>;
  /** App channels with at least one subscriber on any gateway (optionally starting with `prefix`). */
  channels(options?: { prefix?: string; timeoutMs?: number }): Promise<ChannelsAnswer>;
}

/**
 * What web nodes use to reach sockets held by any gateway:
 * `realtime.to({ user: 'alice' }).send('order.shipped', { id })`.
 * The message goes through the bus, gets its channel offset, and every gateway
 * with a subscriber on that channel delivers it.
 */
export function createPublisher<E extends EventMap = EventMap>(bus: Bus): Publisher<E> {
  if (typeof (bus as { publish?: unknown } | null)?.publish !== 'function') {
    throw new ConfigError(
      `createPublisher(bus) takes a message bus: createPublisher(await createBus('redis://127.0.0.1:6379')); got ${kindOf(bus)}`,
    );
  }
  return {
    to(target) {
      checkTarget(target);
      const channel = channelOf(target);
      if (!isValidChannel(channel)) {
        throw new TypeError(`"${channel}" is not a valid channel name: use ${CHANNEL_RULE}`);
      }
      if (isInternalChannel(channel)) {
        throw new TypeError(`"${channel}" is internal to shoal: publish to your own channels`);
      }
      return {
        send(event, data) {
          if (typeof event !== 'string' || event === '') {
            throw new ConfigError(
              `realtime.to(…).send(event, data) takes the event's name as a string, e.g. send('order.shipped', { id }); got ${kindOf(event)}`,
            );
          }
          if (event.startsWith(INTERNAL_EVENT_PREFIX)) {
            throw new TypeError(`event names starting with "${INTERNAL_EVENT_PREFIX}" are reserved for shoal`);
          }
          return bus.publish(channel, { event, data: JSON.stringify(data ?? null) });
        },
      };
    },
    // Checked before anything is sent: bad input rejects and nothing half-happens.
    disconnect: async (target, options) => sendCommand(bus, disconnectCommand(target, options)),
    unsubscribe: async (target, channel) => sendCommand(bus, unsubscribeCommand(target, channel)),
    reauthorize: async (channel) => sendCommand(bus, reauthorizeCommand(channel)),
    async presence(channel, options = {}) {
      if (!isValidChannel(channel) || isInternalChannel(channel)) {
        throw new TypeError(`"${channel}" is not an app channel: use ${CHANNEL_RULE}, not starting with _shoal:`);
      }
      return queryPresence(bus, channel, options);
    },
    async presenceStats(channel, options = {}) {
      const { users, connections, gateways, complete } = await queryPresence(bus, appChannel(channel), options);
      return { users: users.length, connections, gateways, complete };
    },
    broadcast: async (channels, event, data) => broadcast(bus, channels, event, data),
    history: async (channel, options) => readHistory(bus, channel, options),
    async channels(options = {}) {
      const prefix = options.prefix ?? '';
      if (typeof prefix !== 'string') throw new BadCallError('prefix must be a string');
      return queryChannels(bus, prefix, options.timeoutMs);
    },
  };
}

/** Tells every gateway to close the sockets of an ended session (logout, destroy, rotation, expiry). */
export function publishSessionEnded(bus: Bus, sessionId: string, reason: string): Promise<BusMessage> {
  return bus.publish(sessionChannel(sessionId), { event: SESSION_ENDED_EVENT, data: JSON.stringify({ reason }) });
}
