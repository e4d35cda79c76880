import { randomUUID } from 'node:crypto';
import type { Bus } from '../bus/contract.js';
import { sleep } from '../core/timing.js';
import { PRESENCE_CHANNEL, parsePresence, presenceMessage, shardChannel, shardOf } from './presence-wire.js';

export interface PresenceAnswer {
  /** Everyone in the channel on the gateways that answered, sorted. */
  users: string[];
  /** Gateways alive (heartbeat within their TTL) when asked. */
  gateways: number;
  /** Every live gateway answered within the timeout. */
  complete: boolean;
}

/**
 * Asks the gateways who is in a channel, from a process that holds no connections (a web node).
 * Live gateways are those whose heartbeat is in the presence channel's recent history; the
 * question goes to the channel's shard and the answers are read back from its history, so no
 * subscription (and no message handler) is needed. Bounded by `timeoutMs`.
 */
export async function queryPresence(bus: Bus, channel: string, timeoutMs = 1000): Promise<PresenceAnswer> {
  const deadline = Date.now() + timeoutMs;
  const live = await liveGateways(bus);
  const shard = shardChannel(shardOf(channel));
  const id = randomUUID();
  const asked = await bus.publish(shard, presenceMessage({ kind: 'query', id, channel }));
  const answered = new Map<string, string[]>();
  let after = asked.offset;
  while (answered.size < live.size && Date.now() < deadline) {
    const r = await bus.read(shard, after, { limit: 500, epoch: asked.epoch });
    if (!r.complete) break; // the shard's history moved on past the answers (or its epoch changed)
    for (const m of r.messages) {
      after = m.offset;
      const w = parsePresence(m.event, m.data);
      if (w?.kind === 'answer' && w.id === id) answered.set(w.gw, w.users);
    }
    if (answered.size < live.size) await sleep(15);
  }
  const users = new Set([...answered.values()].flat());
  const complete = [...live].every((gw) => answered.has(gw));
  return { users: [...users].sort(), gateways: live.size, complete };
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
