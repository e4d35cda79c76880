import { INTERNAL_EVENT_PREFIX, isInternalChannel } from '../protocol/channels.js';
import type { RequestMessage } from '../protocol/requests.js';
import { currentIdentity, mayJoin } from './access.js';
import type { GatewayParts } from './parts.js';
import { queryPresence } from './presence-query.js';
import { type Answer, type Caller, contextOf, refusal } from './request-caller.js';
import { historyOf } from './server-calls.js';

/**
 * `pub` from a client: published on the bus like any message when the app's `canPublish` says
 * yes (none: always refused). Internal channels and events are refused before it is asked.
 */
export async function clientPublish(
  p: GatewayParts,
  caller: Caller,
  m: Extract<RequestMessage, { type: 'pub' }>,
): Promise<Answer> {
  const { canPublish } = p.s.requests;
  if (isInternalChannel(m.channel) || m.event.startsWith(INTERNAL_EVENT_PREFIX)) {
    return refusal('forbidden', `${m.channel} / ${m.event} is internal to shoal`);
  }
  if (!canPublish || !(await canPublish(contextOf(p, caller), m.channel, m.event))) {
    return refusal('forbidden', `not allowed to publish ${m.event} on ${m.channel}`);
  }
  const sent = await p.s.bus.publish(m.channel, { event: m.event, data: JSON.stringify(m.data ?? null) });
  return { result: { epoch: sent.epoch, offset: sent.offset } };
}

/**
 * `history`: a channel's last `limit` messages (at most `maxHistory`), or those after `since`,
 * for a caller that may join it (the same decision as `sub`, or already joined it). Bounded by
 * the bus's own history window: `complete` is false when the messages asked for are gone.
 */
export async function clientHistory(
  p: GatewayParts,
  caller: Caller,
  m: Extract<RequestMessage, { type: 'history' }>,
): Promise<Answer> {
  if (!(await mayRead(p, caller, m.channel))) return refusal('forbidden', `not allowed to read ${m.channel}`);
  const limit = Math.min(m.limit ?? p.s.requests.limits.maxHistory, p.s.requests.limits.maxHistory);
  return { result: await historyOf(p.s.bus, m.channel, limit, m.since) };
}

/**
 * `clients`: who is in a channel on every gateway, each connection with the info the app lets it
 * show, for a caller that may read the channel. The same question a web node's `presence(channel,
 * { clients: true })` asks, so it costs one bus round trip, not a standing announcement.
 */
export async function clientClients(
  p: GatewayParts,
  caller: Caller,
  m: Extract<RequestMessage, { type: 'clients' }>,
): Promise<Answer> {
  if (isInternalChannel(m.channel) || !(await mayRead(p, caller, m.channel))) {
    return refusal('forbidden', `not allowed to read ${m.channel}`);
  }
  const { clients = [], complete } = await queryPresence(p.s.bus, m.channel, { clients: true });
  return { result: { clients, complete } };
}

/** Joined already, or allowed to join now (the same decision as `sub`). */
async function mayRead(p: GatewayParts, caller: Caller, channel: string): Promise<boolean> {
  if (caller.joined(channel)) return true;
  const who = await currentIdentity({ identity: caller.identity, sessionId: caller.identity.sessionId }, p.s.sessions);
  return who !== null && (await mayJoin(who, channel, p.s.authorize));
}
