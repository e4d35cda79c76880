import { type ClientMessage, CloseCode, parseClientMessage } from '../protocol/messages.js';
import { currentIdentity, mayJoin } from './access.js';
import type { Connection } from './connection.js';
import type { GatewayParts } from './parts.js';
import { sessionChannel } from './session-channel.js';
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
    c.send({ type: 'error', code: 'protocol', message: m.error });
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
  }
}

function unsubscribe(p: GatewayParts, c: Connection, channel: string): void {
  // The session channel is how a session end closes this socket: it cannot be left.
  if (c.sessionId !== null && channel === sessionChannel(c.sessionId)) {
    c.send({ type: 'error', code: 'forbidden', message: 'the session channel cannot be left', channel });
    return;
  }
  p.registry.leave(c, channel);
  c.send({ type: 'unsubscribed', channel });
}

async function subscribe(p: GatewayParts, c: Connection, m: Extract<ClientMessage, { type: 'sub' }>): Promise<void> {
  const joined = c.channels.get(m.channel);
  if (joined) {
    c.send({ type: 'subscribed', channel: m.channel, epoch: joined.epoch, offset: joined.offset, recovered: true });
    return;
  }
  const who = await currentIdentity(c, p.s.sessions);
  if (!who) return p.connections.end(c, CloseCode.SessionEnded, 'session ended');
  if (m.token !== undefined) {
    if (await subscriptionTokenGrants(p, c, m.channel, m.token)) await p.registry.join(c, m.channel, m.from);
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
