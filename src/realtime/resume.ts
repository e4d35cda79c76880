import { isValidChannel } from '../protocol/channels.js';
import { type Cursor, decodeCursors } from '../protocol/messages.js';
import { mayJoin, ownChannels } from './access.js';
import type { ChannelRegistry } from './channels.js';
import type { ChannelState, Connection, Transport } from './connection.js';
import type { GatewayOptions } from './gateway-options.js';
import type { Identity } from './identity.js';
import type { GatewayParts } from './parts.js';
import type { Presence } from './presence.js';

/** What a (re)connecting client asks for: query parameters, and SSE's Last-Event-ID header. */
export interface ResumeRequest {
  params: URLSearchParams;
  lastEventId?: string | undefined;
  /** Handshake headers the connection keeps for the RPC proxy. */
  forwarded?: Record<string, string> | undefined;
}

/**
 * Joins a new connection's channels: its own, every channel it has a cursor for (`resume=`,
 * or Last-Event-ID on SSE, replayed from there), and `channels=`; then, for `presence=`, starts
 * sending presence (what an SSE client, which cannot send frames, uses to follow it).
 *
 * The client is `open` once it hears hello, and may publish, or have the app publish, at once.
 * A channel it asked for without a cursor would start where the channel is when the join reads
 * it, after its bus subscription: what was published since hello would be behind that start,
 * lost with no gap for the client to see. So the channels' positions are read first, hello is
 * sent, and each such channel is joined from its position, as a resume: history replays what
 * came in between. The connection is a member of every channel before hello, so what the server
 * does to it once the client is open (an unsubscribe, a disconnect by user) reaches it.
 */
export async function resumeChannels(
  c: Connection,
  who: Identity,
  req: ResumeRequest,
  deps: { registry: ChannelRegistry; presence: Presence; authorize: GatewayOptions['authorize'] },
): Promise<void> {
  const cursors = decodeCursors(req.lastEventId ?? req.params.get('resume') ?? undefined);
  const wanted = new Set([...ownChannels(who), ...cursors.keys(), ...(req.params.get('channels')?.split(',') ?? [])]);
  const allowed = new Map<string, boolean>();
  for (const channel of wanted) {
    if (c.closed) return;
    allowed.set(channel, isValidChannel(channel) && (await mayJoin(who, channel, deps.authorize)));
  }
  const fresh = [...wanted].filter((channel) => allowed.get(channel) && !cursors.has(channel));
  const starts = await Promise.all(
    fresh.map(async (channel): Promise<[string, Cursor]> => [channel, await deps.registry.bus.position(channel)]),
  );
  for (const [channel, start] of starts) cursors.set(channel, start);
  if (c.closed) return;
  // Members before hello: a server command sent once the client is open finds it in every
  // channel it asked for, and cancels a join still in flight.
  const entered = new Map<string, ChannelState>();
  for (const channel of wanted) {
    const state = allowed.get(channel) ? deps.registry.enter(c, channel) : null;
    if (state) entered.set(channel, state);
  }
  c.release(new Map(starts));
  for (const channel of wanted) {
    if (c.closed) break;
    const state = entered.get(channel);
    if (state) await deps.registry.complete(c, channel, state, cursors.get(channel));
    else if (!allowed.get(channel)) {
      c.send({ type: 'error', code: 'forbidden', message: `not allowed to join ${channel}`, channel });
    }
  }
  for (const channel of req.params.get('presence')?.split(',') ?? []) {
    if (c.closed || !c.followPresence(channel)) continue;
    c.send({ type: 'presence', channel, users: deps.presence.list(channel) });
  }
}

/**
 * Opens a connection and joins what it asks for. Null when it went over a connection limit
 * (already closed with 4429). A failure to join closes it with 1011 before rethrowing: it is
 * not registered with the caller yet, and would otherwise stay counted and subscribed.
 */
export async function openConnection(
  p: GatewayParts,
  who: Identity,
  transport: Transport,
  req: ResumeRequest,
): Promise<Connection | null> {
  const c = p.connections.open(who, transport);
  if (!c) return null;
  if (req.forwarded) c.forwarded = req.forwarded;
  try {
    await resumeChannels(c, who, req, { registry: p.registry, presence: p.presence, authorize: p.s.authorize });
  } catch (err) {
    p.connections.end(c, 1011, 'the gateway could not reach the bus or store; reconnect');
    throw err;
  }
  return c;
}
