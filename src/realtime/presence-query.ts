import { randomUUID } from 'node:crypto';
import type { Bus } from '../bus/contract.js';
import { sleep } from '../core/timing.js';
import {
  PRESENCE_CHANNEL,
  type PresenceWire,
  parsePresence,
  presenceMessage,
  shardChannel,
  shardOf,
} from './presence-wire.js';

export interface PresenceAnswer {
  /** Everyone in the channel on the gateways that answered, sorted. */
  users: string[];
  /** Connections in the channel on the gateways that answered (a user with two tabs counts twice). */
  connections: number;
  /** Gateways alive (heartbeat within their TTL) when asked. */
  gateways: number;
  /** Every live gateway answered within the timeout. */
  complete: boolean;
  /**
   * When asked for (`clients: true`): each connection with a user, sorted by user, with the info
   * the app lets it show; at most 1,000 per gateway.
   */
  clients?: PresenceClient[];
}

/** One connection in a channel, as a presence answer lists it. */
export interface PresenceClient {
  user: string;
  /** `<gateway id>/<n>`: tells two tabs of one user apart. */
  connection: string;
  /** What the app lets the connection show (a token's `info` claim, the connect proxy's, `connectionInfo`); null for nothing. */
  info: unknown;
}

export interface PresenceQueryOptions {
  timeoutMs?: number;
  /** List each connection with its info too. */
  clients?: boolean;
}

export interface ChannelsAnswer {
  /** App channels with at least one subscriber on a gateway that answered, by name, with their connections. */
  channels: Array<{ channel: string; connections: number }>;
  gateways: number;
  complete: boolean;
}

/**
 * Asks the gateways who is in a channel, from a process that holds no connections (a web node).
 * Live gateways are those whose heartbeat is in the presence channel's recent history; the
 * question goes to the channel's shard and the answers are read back from its history, so no
 * subscription (and no message handler) is needed. Bounded by `timeoutMs`.
 */
export async function queryPresence(
  bus: Bus,
  channel: string,
  { timeoutMs = 1000, clients: withClients = false }: PresenceQueryOptions = {},
): Promise<PresenceAnswer> {
  const id = randomUUID();
  const question: PresenceWire & { id: string } = {
    kind: 'query',
    id,
    channel,
    ...(withClients ? { clients: true } : {}),
  };
  const { answers, gateways, complete } = await ask(bus, shardOf(channel), question, timeoutMs);
  const users = new Set<string>();
  const clients: PresenceClient[] = [];
  let connections = 0;
  for (const w of answers) {
    if (w.kind !== 'answer' || w.id !== id) continue;
    for (const u of w.users) users.add(u);
    connections += w.connections ?? w.users.length;
    for (const [user, connection, info] of w.clients ?? []) clients.push({ user, connection, info: info ?? null });
  }
  const answer: PresenceAnswer = { users: [...users].sort(), connections, gateways, complete };
  if (!withClients) return answer;
  clients.sort((a, b) => (a.user === b.user ? compare(a.connection, b.connection) : compare(a.user, b.user)));
  return { ...answer, clients };
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Asks the gateways which app channels (starting with `prefix`) have subscribers, the same way. */
export async function queryChannels(bus: Bus, prefix = '', timeoutMs = 1000): Promise<ChannelsAnswer> {
  const id = randomUUID();
  const { answers, gateways, complete } = await ask(bus, 0, { kind: 'list', id, prefix }, timeoutMs);
  const counts = new Map<string, number>();
  for (const w of answers) {
    if (w.kind !== 'channels' || w.id !== id) continue;
    for (const [channel, n] of Object.entries(w.channels)) counts.set(channel, (counts.get(channel) ?? 0) + n);
  }
  const channels = [...counts]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([channel, connections]) => ({ channel, connections }));
  return { channels, gateways, complete };
}

/** Publishes `question` on a presence shard and collects one answer per live gateway until `timeoutMs`. */
async function ask(bus: Bus, shard: number, question: PresenceWire & { id: string }, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const live = await liveGateways(bus);
  const channel = shardChannel(shard);
  const asked = await bus.publish(channel, presenceMessage(question));
  const answered = new Map<string, PresenceWire>();
  let after = asked.offset;
  while (answered.size < live.size && Date.now() < deadline) {
    const r = await bus.read(channel, after, { limit: 500, epoch: asked.epoch });
    if (!r.complete) break; // the shard's history moved on past the answers (or its epoch changed)
    for (const m of r.messages) {
      after = m.offset;
      const w = parsePresence(m.event, m.data);
      if (w && 'gw' in w && (w.kind === 'answer' || w.kind === 'channels') && w.id === question.id)
        answered.set(w.gw, w);
    }
    if (answered.size < live.size) await sleep(15);
  }
  const complete = [...live].every((gw) => answered.has(gw));
  return { answers: [...answered.values()], gateways: live.size, complete };
}

/** Gateways whose last word in the presence channel's recent history is a heartbeat within its TTL. */
async function liveGateways(bus: Bus): Promise<Set<string>> {
  const head = await bus.position(PRESENCE_CHANNEL);
  const now = Date.now();
  // The history window may be smaller than what is asked for: ask for less until it fits.
  for (let back = 512; back >= 4; back /= 4) {
    const r = await bus.read(PRESENCE_CHANNEL, Math.max(0, head.offset - back), { limit: back });
    if (!r.complete) continue;
    const last = new Map<string, { alive: boolean; at: number; ttlMs: number }>();
    for (const m of r.messages) {
      const w = parsePresence(m.event, m.data);
      if (w?.kind === 'alive') last.set(w.gw, { alive: true, at: m.publishedAt, ttlMs: w.ttlMs });
      else if (w?.kind === 'bye') last.set(w.gw, { alive: false, at: m.publishedAt, ttlMs: 0 });
    }
    return new Set([...last].filter(([, v]) => v.alive && now - v.at < v.ttlMs).map(([gw]) => gw));
  }
  return new Set();
}
