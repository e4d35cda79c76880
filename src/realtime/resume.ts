import { isValidChannel } from '../protocol/channels.js';
import { type Cursor, decodeCursors } from '../protocol/messages.js';
import { mayJoin, ownChannels } from './access.js';
import type { ChannelRegistry } from './channels.js';
import { type ChannelState, type Connection, REMOVED_BY_SERVER, type Transport } from './connection.js';
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
 * came in between.
 *
 * What the server does to the connection while it opens reaches it. It is a member of its own
 * user and session channels from the start, before any await, so a command that names the user
 * or the session (a disconnect, an unsubscribe) finds it as soon as the socket is open; of each
 * other channel once allowed, before hello. An unsubscribe that comes while a channel's
 * authorization is still being decided is kept by the connection (`removedWhileOpening`): that
 * channel is not joined, and the client hears `unsubscribed`.
 */
export async function resumeChannels(
  c: Connection,
  who: Identity,
  req: ResumeRequest,
  deps: { registry: ChannelRegistry; presence: Presence; authorize: GatewayOptions['authorize'] },
): Promise<void> {
  const cursors = decodeCursors(req.lastEventId || req.params.get('resume') || undefined);
  const own = ownChannels(who);
  const wanted = new Set([...own, ...cursors.keys(), ...listParam(req.params, 'channels')]);
  const entered = new Map<string, ChannelState>();
  const enter = (channel: string) => {
    const state = deps.registry.enter(c, channel, cursors.get(channel));
    if (state) entered.set(channel, state);
  };
  for (const channel of own) enter(channel);
  /** The channels not joined: refused, or taken away by the server while they were authorized. */
  const notJoined = new Map<string, 'forbidden' | 'removed'>();
  for (const channel of wanted) {
    if (c.closed) return;
    if (entered.has(channel)) continue;
    const allowed = isValidChannel(channel) && (await mayJoin(who, channel, deps.authorize));
    if (c.closed) return;
    if (!allowed) notJoined.set(channel, 'forbidden');
    else if (c.removedWhileOpening(channel)) notJoined.set(channel, 'removed');
    else enter(channel);
  }
  const fresh = [...entered.keys()].filter((channel) => !cursors.has(channel));
  const starts = await Promise.all(
    fresh.map(async (channel): Promise<[string, Cursor]> => [channel, await deps.registry.bus.position(channel)]),
  );
  for (const [channel, start] of starts) {
    cursors.set(channel, start);
    const state = entered.get(channel);
    // Where it starts is its cursor from now on, also in an SSE event id sent before its join is done.
    if (state?.epoch === '') {
      state.epoch = start.epoch;
      state.offset = start.offset;
    }
  }
  if (c.closed) return;
  c.release(new Map(starts.filter(([channel]) => c.channels.has(channel))));
  for (const channel of wanted) {
    if (c.closed) break;
    const state = entered.get(channel);
    const why = notJoined.get(channel);
    if (state) await deps.registry.complete(c, channel, state, cursors.get(channel));
    else if (why === 'removed') c.send({ type: 'unsubscribed', channel, reason: REMOVED_BY_SERVER });
    else if (why === 'forbidden') {
      c.send({ type: 'error', code: 'forbidden', message: `not allowed to join ${channel}`, channel });
    }
  }
  for (const channel of listParam(req.params, 'presence')) {
    if (c.closed || !c.followPresence(channel)) continue;
    c.send({ type: 'presence', channel, users: deps.presence.list(channel) });
  }
}

/** A comma-separated list parameter; empty entries (`channels=`, `a,,b`) are no channels. */
function listParam(params: URLSearchParams, name: string): string[] {
  return (params.get(name) ?? '').split(',').filter((entry) => entry !== '');
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
