/**
 * What one gateway knows of the others' users: per gateway, per shard, the channels and their
 * users as of the last sequence number applied. Pure state; presence.ts decides what to ask for.
 */
interface ShardState {
  seq: number;
  channels: Map<string, Set<string>>;
}

interface RemoteGateway {
  lastSeen: number;
  ttlMs: number;
  shards: Map<number, ShardState>;
}

export class RemotePresence {
  readonly #gateways = new Map<string, RemoteGateway>();

  #gateway(gw: string, now: number): RemoteGateway {
    let g = this.#gateways.get(gw);
    if (!g) {
      g = { lastSeen: now, ttlMs: 15_000, shards: new Map() };
      this.#gateways.set(gw, g);
    }
    return g;
  }

  /** A heartbeat: the shards whose sequence number is ahead of what was applied (something was missed). */
  alive(gw: string, seqs: number[], ttlMs: number, now: number): number[] {
    const g = this.#gateway(gw, now);
    g.lastSeen = now;
    g.ttlMs = ttlMs;
    const behind: number[] = [];
    seqs.forEach((seq, shard) => {
      if (seq > (g.shards.get(shard)?.seq ?? 0)) behind.push(shard);
    });
    return behind;
  }

  /**
   * Applies one delta. Returns whether it was the next in sequence; when not, the changes are
   * applied anyway (each is idempotent) and the caller asks for a snapshot to be sure.
   */
  delta(gw: string, shard: number, seq: number, changes: Iterable<[string, string, 0 | 1]>, now: number): boolean {
    const g = this.#gateway(gw, now);
    g.lastSeen = now;
    const state = g.shards.get(shard) ?? { seq: 0, channels: new Map() };
    g.shards.set(shard, state);
    const inOrder = seq === state.seq + 1;
    if (seq <= state.seq) return true; // already covered by a snapshot
    state.seq = seq;
    for (const [channel, user, present] of changes) {
      let users = state.channels.get(channel);
      if (present) {
        if (!users) {
          users = new Set();
          state.channels.set(channel, users);
        }
        users.add(user);
      } else if (users) {
        users.delete(user);
        if (users.size === 0) state.channels.delete(channel);
      }
    }
    return inOrder;
  }

  /** Replaces a gateway's shard, unless what was applied is newer than the snapshot. */
  snapshot(gw: string, shard: number, seq: number, channels: Record<string, string[]>, now: number): void {
    const g = this.#gateway(gw, now);
    g.lastSeen = now;
    const before = g.shards.get(shard);
    if (before && before.seq > seq) return;
    const next = new Map(
      Object.entries(channels)
        .filter(([, users]) => users.length > 0)
        .map(([channel, users]) => [channel, new Set(users)]),
    );
    g.shards.set(shard, { seq, channels: next });
  }

  /** Forgets a gateway (it said bye, or fell silent). */
  drop(gw: string): void {
    this.#gateways.delete(gw);
  }

  /** The channels a gateway has users in, in one shard or in all. */
  channelsOf(gw: string, shard?: number): string[] {
    const shards = [...(this.#gateways.get(gw)?.shards ?? [])];
    return shards.filter(([k]) => shard === undefined || k === shard).flatMap(([, s]) => [...s.channels.keys()]);
  }

  /** Gateways silent for longer than their own ttl. */
  silent(now: number): string[] {
    return [...this.#gateways].filter(([, g]) => now - g.lastSeen >= g.ttlMs).map(([gw]) => gw);
  }

  addUsers(channel: string, shard: number, into: Set<string>): void {
    for (const g of this.#gateways.values()) {
      for (const user of g.shards.get(shard)?.channels.get(channel) ?? []) into.add(user);
    }
  }
}
