import type { Bus } from '../bus/contract.js';
import {
  CHANNEL_RULE,
  isInternalChannel,
  isPersonalChannel,
  isValidChannel,
  userChannel,
} from '../protocol/channels.js';
import { CloseCode, isAppCloseCode } from '../protocol/messages.js';
import { sessionChannel } from './session-channel.js';

/** The bus channel every gateway listens on for commands about live connections. Commands are rare: one channel is enough. */
export const CONTROL_CHANNEL = '_shoal:control';

/** Whose connections a command is about. */
export type ConnectionTarget = { user: string } | { session: string };

export interface DisconnectOptions {
  /** 4403 (default), an app code in 4500–4999 (the client does not reconnect), or 1012 (it reconnects at once). */
  code?: number;
  /** Shown to the client with the code (at most 120 characters). */
  reason?: string;
}

/**
 * A command as it travels on the bus. A session is named by its channel (a hash of its id),
 * never by the id itself, which is a credential.
 */
export type ControlCommand =
  | { op: 'disconnect'; target: WireTarget; code: number; reason: string }
  | { op: 'unsubscribe'; target: WireTarget; channel: string }
  | { op: 'reauthorize'; channel: string };

/** The channel that names a target's connections: `user:<id>` or `session:<hash>`. */
export type WireTarget = { channel: string };

export function wireTarget(target: ConnectionTarget): WireTarget {
  if (typeof target !== 'object' || target === null) throw new TypeError('target must be { user } or { session }');
  // Both named would leave it to this code which one wins: the caller says which.
  if ('user' in target && 'session' in target && target.user !== undefined && target.session !== undefined) {
    throw new TypeError('target names both a user and a session: give { user } or { session }');
  }
  if ('user' in target && typeof target.user === 'string' && target.user) return { channel: userChannel(target.user) };
  if ('session' in target && typeof target.session === 'string' && target.session) {
    return { channel: sessionChannel(target.session) };
  }
  throw new TypeError('target must be { user: "<user id>" } or { session: "<session id>" }');
}

function appChannel(channel: unknown, what: string): string {
  if (!isValidChannel(channel)) throw new TypeError(`${what}: channel must be ${CHANNEL_RULE}`);
  if (isInternalChannel(channel) || isPersonalChannel(channel)) {
    throw new TypeError(
      `${what}: "${channel}" is not an app channel (user:, session: and _shoal: ones cannot be left)`,
    );
  }
  return channel;
}

export function disconnectCommand(target: ConnectionTarget, o: DisconnectOptions = {}): ControlCommand {
  const code = o.code ?? CloseCode.Disconnected;
  if (!Number.isInteger(code) || !isAppCloseCode(code)) {
    throw new TypeError(`disconnect: code must be 4403, 1012 or an app code in 4500–4999, not ${code}`);
  }
  const reason = o.reason ?? 'disconnected by the server';
  if (typeof reason !== 'string' || reason.length > 120) {
    throw new TypeError('disconnect: reason must be a string of at most 120 characters');
  }
  return { op: 'disconnect', target: wireTarget(target), code, reason };
}

export function unsubscribeCommand(target: ConnectionTarget, channel: string): ControlCommand {
  return { op: 'unsubscribe', target: wireTarget(target), channel: appChannel(channel, 'unsubscribe') };
}

export function reauthorizeCommand(channel: string): ControlCommand {
  return { op: 'reauthorize', channel: appChannel(channel, 'reauthorize') };
}

export async function sendCommand(bus: Bus, command: ControlCommand): Promise<void> {
  await bus.publish(CONTROL_CHANNEL, { event: 'control', data: JSON.stringify(command) });
}

/** A command read back from the bus; null for anything else (the channel is internal, but be strict). */
export function parseCommand(data: string): ControlCommand | null {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(data) as Record<string, unknown>;
  } catch {
    return null;
  }
  const target = c.target as WireTarget | undefined;
  const hasTarget = typeof target?.channel === 'string';
  switch (c.op) {
    case 'disconnect':
      return hasTarget && typeof c.code === 'number' && typeof c.reason === 'string'
        ? { op: 'disconnect', target: { channel: target.channel }, code: c.code, reason: c.reason }
        : null;
    case 'unsubscribe':
      return hasTarget && typeof c.channel === 'string'
        ? { op: 'unsubscribe', target: { channel: target.channel }, channel: c.channel }
        : null;
    case 'reauthorize':
      return typeof c.channel === 'string' ? { op: 'reauthorize', channel: c.channel } : null;
    default:
      return null;
  }
}
