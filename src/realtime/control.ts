import { CloseCode } from '../protocol/messages.js';
import { currentIdentity, mayJoin } from './access.js';
import { type Connection, REMOVED_BY_SERVER } from './connection.js';
import { type ControlCommand, parseCommand, type WireTarget } from './control-commands.js';
import type { Identity } from './identity.js';
import type { GatewayParts } from './parts.js';
import { sessionChannel } from './session-channel.js';

/**
 * Server-side control of live connections: carries out, on this gateway, a command any web node
 * (or `POST /disconnect|/unsubscribe|/reauthorize`) put on the control channel.
 */
export function applyControl(p: GatewayParts, data: string): void {
  const command = parseCommand(data);
  if (!command) return;
  run(p, command).catch((err: unknown) => {
    p.s.log({ level: 'warn', msg: 'control command failed', gateway: p.s.id, op: command.op, err: String(err) });
  });
}

async function run(p: GatewayParts, command: ControlCommand): Promise<void> {
  switch (command.op) {
    case 'disconnect':
      for (const c of targeted(p, command.target)) p.connections.end(c, command.code, command.reason);
      return;
    case 'unsubscribe':
      for (const c of targeted(p, command.target)) {
        // Still opening, its authorization of the channel in flight: it will not join it (resumeChannels).
        if (!c.channels.has(command.channel)) c.removeWhileOpening(command.channel);
        else {
          p.registry.leave(c, command.channel);
          c.send({ type: 'unsubscribed', channel: command.channel, reason: REMOVED_BY_SERVER });
        }
      }
      return;
    case 'reauthorize':
      return reauthorize(p, command.channel);
  }
}

/**
 * The local connections a target names: every connection joins its session's channel and,
 * when signed in, its user's channel, so the channel's members are the target's connections.
 * A session also names the connect-proxy connections whose answer gave that session id.
 */
function targeted(p: GatewayParts, target: WireTarget): Connection[] {
  const members = [...(p.registry.members(target.channel) ?? [])];
  if (!target.channel.startsWith('session:')) return members;
  const own = members.filter((c) => c.sessionId !== null && sessionChannel(c.sessionId) === target.channel);
  return [...own, ...p.connections.ofAppSession(target.channel)];
}

async function reauthorize(p: GatewayParts, channel: string): Promise<void> {
  const members = [...(p.registry.members(channel) ?? [])];
  // Tabs of one session ask once: the answer depends on the session, not the tab.
  const verdicts = new Map<string, Promise<Identity | null>>();
  await Promise.all(
    members.map(async (c) => {
      const key = c.sessionId ?? `connection:${c.id}`;
      let loading = verdicts.get(key);
      if (!loading) {
        loading = currentIdentity(c, p.s.sessions);
        verdicts.set(key, loading);
      }
      const who = await loading;
      if (!who) return p.connections.end(c, CloseCode.SessionEnded, 'session ended');
      if (await mayJoin(who, channel, p.s.authorize)) return;
      if (c.closed || !c.channels.has(channel)) return;
      p.registry.leave(c, channel);
      c.send({ type: 'unsubscribed', channel, reason: 'forbidden' });
    }),
  );
}
