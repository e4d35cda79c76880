import { type ClientMessage, CloseCode, parseClientMessage } from '../protocol/messages.js';
import { currentIdentity, mayJoin } from './access.js';
import { answerRequest, connectionCaller } from './client-requests.js';
import type { Connection } from './connection.js';
import type { GatewayParts } from './parts.js';
import { sessionChannel } from './session-channel.js';
import { forgetSubscriptionExpiry, scheduleSubscriptionExpiry } from './sub-token-expiry.js';
import { refreshToken, subscriptionTokenGrants } from './token-refresh.js';

/** Handles one client frame. A store or bus failure is answered on the socket, never left unhandled. */
export function handleFrame(p: GatewayParts, c: Connection, text: string): Promise<void> {
  return handle(p, c, text).catch((err: unknown) => {
    p.s.log({ level: 'warn', msg: 'client message failed', gateway: p.s.id, err: String(err) });
    c.send({ type: 'error', code: 'unavailable', message: 'the gateway could not reach the bus or store; retry' });
  });
}

async function handle(p: GatewayParts, c: Connection, text: string): Promise<void> {
  const m = parseClientMessage(text);
  if ('error' in m) {
    p.metrics.protocolErrors.inc();
    if (m.id === undefined) {
      return c.send({
        type: 'error',
        code: 'protocol',
        message: m.error,
        ...(m.channel !== undefined ? { channel: m.channel } : {}),
      });
    }
    // A request with an id gets its reply, so the caller's promise settles.
    p.metrics.requestErrors.inc({ type: 'request', code: 'bad_request' });
    c.send({ type: 'reply', id: m.id, error: { code: 'bad_request', message: m.error } });
    return;
  }
  p.keepAlive.inbound(c);
  switch (m.type) {
    case 'ping':
      c.send({ type: 'pong', ...(m.id !== undefined ? { id: m.id } : {}) });
      return;
    case 'unsub':
      return unsubscribe(p, c, m.channel);
    case 'presence':
      if (!c.followPresence(m.channel)) return notSubscribed(c, m.channel);
      c.send({ type: 'presence', channel: m.channel, users: p.presence.list(m.channel) });
      return;
    case 'sub':
      return subscribe(p, c, m);
    case 'refresh':
      return refreshToken(p, c, m.token);
    case 'pub':
      // Awaited: one client's publishes reach the channel in the order it sent them.
      return answerRequest(p, connectionCaller(p, c), m, Buffer.byteLength(text));
    case 'rpc':
    case 'history':
    case 'clients':
      // Not awaited: a slow method must not hold up the frames behind it (in flight is bounded).
      void answerRequest(p, connectionCaller(p, c), m, Buffer.byteLength(text));
      return;
  }
}

function unsubscribe(p: GatewayParts, c: Connection, channel: string): void {
  // The session channel is how a session end closes this socket: it cannot be left.
  if (c.sessionId !== null && channel === sessionChannel(c.sessionId)) {
    c.send({ type: 'error', code: 'forbidden', message: 'the session channel cannot be left', channel });
    return;
  }
  p.registry.leave(c, channel);
  forgetSubscriptionExpiry(c, channel);
  c.send({ type: 'unsubscribed', channel });
}

async function subscribe(p: GatewayParts, c: Connection, m: Extract<ClientMessage, { type: 'sub' }>): Promise<void> {
  const joined = c.channels.get(m.channel);
  // Already joined with a token: a fresh token moves its expiry.
  if (joined && m.token !== undefined) {
    const expiresAt = await subscriptionTokenGrants(p, c, m.channel, m.token);
    if (expiresAt !== false) scheduleSubscriptionExpiry(p, c, m.channel, expiresAt);
  }
  if (joined) {
    // A join still in flight answers on its own.
    if (!joined.answered) return;
    c.send({ type: 'subscribed', channel: m.channel, epoch: joined.epoch, offset: joined.offset, recovered: true });
    return;
  }
  const who = await currentIdentity(c, p.s.sessions);
  if (!who) return p.connections.end(c, CloseCode.SessionEnded, 'session ended');
  if (m.token !== undefined) {
    const expiresAt = await subscriptionTokenGrants(p, c, m.channel, m.token);
    if (expiresAt === false) return;
    // Not when a server command removed it while it joined.
    if (await p.registry.join(c, m.channel, m.from)) scheduleSubscriptionExpiry(p, c, m.channel, expiresAt);
    return;
  }
  if (!(await mayJoin(who, m.channel, p.s.authorize))) {
    c.send({ type: 'error', code: 'forbidden', message: `not allowed to join ${m.channel}`, channel: m.channel });
    return;
  }
  await p.registry.join(c, m.channel, m.from);
}

function notSubscribed(c: Connection, channel: string): void {
  c.send({ type: 'error', code: 'not-subscribed', message: `join ${channel} first`, channel });
}
