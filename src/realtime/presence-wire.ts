import { INTERNAL_CHANNEL_PREFIX } from '../protocol/channels.js';

/**
 * What gateways tell each other about presence, on the bus. Two kinds of channel:
 * - `_shoal:presence`: each gateway's heartbeat (`alive`, with its sequence number per shard) and
 *   its `bye` when it stops. One message per gateway per heartbeat, whatever it holds.
 * - `_shoal:presence:<shard>`: the changes (`delta`: users who joined or left channels of this
 *   shard), `snapshot`s of one gateway's users in a shard (answers to `sync`, asked by a gateway
 *   that missed a delta or just started), and a web node's `query` for one channel with the
 *   gateways' `answer`s; on shard 0 also a server API call's `list` of active channels with the
 *   gateways' `channels` answers. Sharding spreads the traffic over slots (Redis Cluster) and subjects.
 * So announcements follow changes, not channels × gateways.
 */
export const PRESENCE_CHANNEL = `${INTERNAL_CHANNEL_PREFIX}presence`;
export const PRESENCE_SHARDS = 8;

/** One change: [channel, user, 1 joined | 0 left]. */
export type PresenceChange = [channel: string, user: string, present: 0 | 1];

export type PresenceWire =
  | { kind: 'alive'; gw: string; seqs: number[]; ttlMs: number }
  | { kind: 'bye'; gw: string }
  | { kind: 'delta'; gw: string; seq: number; changes: PresenceChange[] }
  | { kind: 'snapshot'; gw: string; seq: number; channels: Record<string, string[]> }
  /** `gw`: the gateway asked, or '*' for every gateway. */
  | { kind: 'sync'; from: string; gw: string }
  /** `clients`: answer with each connection and its info too (see connection-info.ts). */
  | { kind: 'query'; id: string; channel: string; clients?: boolean }
  /**
   * `connections`: how many of the gateway's connections are in the channel (absent from older
   * gateways); `clients`, when asked: up to MAX_PRESENCE_CLIENTS of them.
   */
  | { kind: 'answer'; gw: string; id: string; users: string[]; connections?: number; clients?: PresenceClientWire[] }
  /** A server API call's question for the channels with subscribers, on shard 0; `prefix` filters them. */
  | { kind: 'list'; id: string; prefix: string }
  /** One gateway's answer to `list`: channel → its connections there. */
  | { kind: 'channels'; gw: string; id: string; channels: Record<string, number> };

/** One connection in a presence answer: [user, connection id (gateway/n), the info it shows]. */
export type PresenceClientWire = [user: string, connection: string, info: unknown];

/** Connections one gateway lists per answer: the answer is one bus message. */
export const MAX_PRESENCE_CLIENTS = 1000;

export function shardOf(channel: string): number {
  // FNV-1a: cheap, stable across processes and versions.
  let h = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) h = Math.imul(h ^ channel.charCodeAt(i), 0x01000193);
  return (h >>> 0) % PRESENCE_SHARDS;
}

export function shardChannel(shard: number): string {
  return `${PRESENCE_CHANNEL}:${shard}`;
}

/** The shard a presence bus channel carries, or undefined when it is not one. */
export function shardOfBusChannel(channel: string): number | undefined {
  if (!channel.startsWith(`${PRESENCE_CHANNEL}:`)) return undefined;
  const shard = Number(channel.slice(PRESENCE_CHANNEL.length + 1));
  return Number.isInteger(shard) && shard >= 0 && shard < PRESENCE_SHARDS ? shard : undefined;
}

export function isPresenceBusChannel(channel: string): boolean {
  return channel === PRESENCE_CHANNEL || shardOfBusChannel(channel) !== undefined;
}

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

const isClient = (c: unknown): c is PresenceClientWire =>
  Array.isArray(c) && c.length === 3 && typeof c[0] === 'string' && typeof c[1] === 'string';

/** Parses one presence message; anything malformed (or forged by hand) is undefined and ignored. */
export function parsePresence(event: string, data: string): PresenceWire | undefined {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(data) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof m !== 'object' || m === null) return undefined;
  const gw = m.gw;
  switch (event) {
    case 'alive':
      return typeof gw === 'string' && Array.isArray(m.seqs) && m.seqs.every(Number.isSafeInteger)
        ? { kind: 'alive', gw, seqs: m.seqs as number[], ttlMs: Number(m.ttlMs) || 15_000 }
        : undefined;
    case 'bye':
      return typeof gw === 'string' ? { kind: 'bye', gw } : undefined;
    case 'delta': {
      const changes = m.changes;
      const ok =
        Array.isArray(changes) &&
        changes.every(
          (c) => Array.isArray(c) && typeof c[0] === 'string' && typeof c[1] === 'string' && (c[2] === 0 || c[2] === 1),
        );
      return typeof gw === 'string' && Number.isSafeInteger(m.seq) && ok
        ? { kind: 'delta', gw, seq: m.seq as number, changes: changes as PresenceChange[] }
        : undefined;
    }
    case 'snapshot': {
      const channels = m.channels as Record<string, unknown> | null;
      const ok = typeof channels === 'object' && channels !== null && Object.values(channels).every(strings);
      return typeof gw === 'string' && Number.isSafeInteger(m.seq) && ok
        ? { kind: 'snapshot', gw, seq: m.seq as number, channels: channels as Record<string, string[]> }
        : undefined;
    }
    case 'sync':
      return typeof m.from === 'string' && typeof gw === 'string' ? { kind: 'sync', from: m.from, gw } : undefined;
    case 'query':
      return typeof m.id === 'string' && typeof m.channel === 'string'
        ? { kind: 'query', id: m.id, channel: m.channel, ...(m.clients === true ? { clients: true } : {}) }
        : undefined;
    case 'answer':
      return typeof gw === 'string' && typeof m.id === 'string' && strings(m.users)
        ? {
            kind: 'answer',
            gw,
            id: m.id,
            users: m.users,
            ...(Number.isSafeInteger(m.connections) ? { connections: m.connections as number } : {}),
            ...(Array.isArray(m.clients) ? { clients: m.clients.filter(isClient) } : {}),
          }
        : undefined;
    case 'list':
      return typeof m.id === 'string' && typeof m.prefix === 'string'
        ? { kind: 'list', id: m.id, prefix: m.prefix }
        : undefined;
    case 'channels': {
      const channels = m.channels as Record<string, unknown> | null;
      const ok =
        typeof channels === 'object' && channels !== null && Object.values(channels).every(Number.isSafeInteger);
      return typeof gw === 'string' && typeof m.id === 'string' && ok
        ? { kind: 'channels', gw, id: m.id, channels: channels as Record<string, number> }
        : undefined;
    }
    default:
      return undefined;
  }
}

/** Encodes a message for bus.publish: the kind is the event, the rest the data. */
export function presenceMessage(m: PresenceWire): { event: string; data: string } {
  const { kind, ...rest } = m;
  return { event: kind, data: JSON.stringify(rest) };
}
