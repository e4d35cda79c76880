import { randomUUID } from 'node:crypto';
import type { Bus, BusMessage } from '../bus/contract.js';
import { RemotePresence } from './presence-remote.js';
import {
  MAX_PRESENCE_CLIENTS,
  PRESENCE_CHANNEL,
  PRESENCE_SHARDS,
  type PresenceChange,
  type PresenceClientWire,
  type PresenceWire,
  parsePresence,
  presenceMessage,
  shardChannel,
  shardOf,
  shardOfBusChannel,
} from './presence-wire.js';

export { PRESENCE_CHANNEL };

/** Who joined and left since the last list the connection was sent. */
export interface PresenceDiff {
  joined: string[];
  left: string[];
}

/**
 * Presence across gateways (wire format in presence-wire.ts). Each gateway announces only
 * changes: users who joined or left a channel, batched per shard every `coalesceMs`, numbered per
 * shard. The others apply them in order; one that missed a number, or just started, asks for a
 * snapshot. A heartbeat per gateway (not per channel) carries the numbers, so a lost last change
 * is noticed, and its absence past the TTL drops a crashed gateway's users. Users are
 * de-duplicated across tabs and gateways.
 */
export class Presence {
  /** channel → user → number of local connections */
  readonly #local = new Map<string, Map<string, number>>();
  readonly #remote = new RemotePresence();
  /** Per shard: changes not yet announced (channel\0user → present), and the last number used. */
  readonly #outbox = Array.from({ length: PRESENCE_SHARDS }, () => new Map<string, PresenceChange>());
  readonly #seqs: number[] = new Array(PRESENCE_SHARDS).fill(0);
  /** Per shard: the publish chain, so a shard's messages leave in the order they are numbered. */
  readonly #chains: Promise<unknown>[] = Array.from({ length: PRESENCE_SHARDS }, () => Promise.resolve());
  /** Channels whose list changed locally since the last notification, with the list before. */
  readonly #before = new Map<string, string[]>();
  /** `${gw}/${shard}` → when a snapshot was last asked for, so a burst of gaps asks once. */
  readonly #asked = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  /**
   * The channels with local subscribers and how many connections each (set by the gateway from its
   * channel registry, which also counts connections without a user), for a `list` question.
   */
  localChannels: () => Iterable<[string, number]> = () => [];
  /** This gateway's connections with a user in a channel, with their info: for a query that asks for clients. */
  localClients: (channel: string) => Iterable<PresenceClientWire> = () => [];
  /**
   * This instance's name on the presence channels: the gateway id plus a random part, so a gateway
   * restarted under the same id after a crash starts a new sequence the others do not mistake
   * for the old one (whose users they drop after the TTL).
   */
  readonly gateway: string;

  constructor(
    readonly bus: Bus,
    gatewayId: string,
    readonly onChange: (channel: string, users: string[], diff: PresenceDiff) => void,
    readonly heartbeatMs = 5000,
    readonly ttlMs = 15_000,
    /** Changes within this window are announced together, so a burst of joins is one message. */
    readonly coalesceMs = 100,
  ) {
    this.gateway = `${gatewayId}#${randomUUID().slice(0, 8)}`;
  }

  async start(): Promise<void> {
    await this.bus.subscribe(PRESENCE_CHANNEL);
    for (let shard = 0; shard < PRESENCE_SHARDS; shard++) await this.bus.subscribe(shardChannel(shard));
    for (let shard = 0; shard < PRESENCE_SHARDS; shard++)
      this.#send(shard, { kind: 'sync', from: this.gateway, gw: '*' });
    this.#heartbeat();
    this.#timer = setInterval(() => this.#heartbeat(), this.heartbeatMs);
    this.#timer.unref();
  }

  /** Stops the heartbeat and says bye, so the others drop this gateway's users at once. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#flush();
    void this.#publish(PRESENCE_CHANNEL, { kind: 'bye', gw: this.gateway });
  }

  join(channel: string, user: string): void {
    const users = this.#local.get(channel) ?? new Map<string, number>();
    const before = users.get(user) ?? 0;
    if (before === 0) this.#remember(channel);
    this.#local.set(channel, users);
    users.set(user, before + 1);
    if (before === 0) this.#changed(channel, user, 1);
  }

  leave(channel: string, user: string): void {
    const users = this.#local.get(channel);
    const count = users?.get(user);
    if (!users || count === undefined) return;
    if (count > 1) {
      users.set(user, count - 1);
      return;
    }
    this.#remember(channel);
    users.delete(user);
    if (users.size === 0) this.#local.delete(channel);
    this.#changed(channel, user, 0);
  }

  /** Everyone in the channel on any gateway, sorted. */
  list(channel: string): string[] {
    const all = new Set(this.#local.get(channel)?.keys() ?? []);
    this.#remote.addUsers(channel, shardOf(channel), all);
    return [...all].sort();
  }

  /** Feed for messages on the presence channels (see isPresenceBusChannel). */
  receive(m: BusMessage): void {
    const w = parsePresence(m.event, m.data);
    if (!w || ('gw' in w && w.gw === this.gateway && w.kind !== 'sync')) return;
    const shard = shardOfBusChannel(m.channel);
    const now = Date.now();
    if (shard === undefined) {
      if (w.kind === 'alive') {
        for (const behind of this.#remote.alive(w.gw, w.seqs, w.ttlMs, now)) this.#askSnapshot(w.gw, behind);
      } else if (w.kind === 'bye') this.#forget(w.gw);
      return;
    }
    switch (w.kind) {
      case 'delta': {
        const channels = [...new Set(w.changes.map((c) => c[0]))];
        let inOrder = true;
        this.#notifyAround(channels, () => {
          inOrder = this.#remote.delta(w.gw, shard, w.seq, w.changes, now);
        });
        if (!inOrder) this.#askSnapshot(w.gw, shard);
        return;
      }
      case 'snapshot': {
        // Channels the gateway no longer has users in are in what was known, not in the snapshot.
        const touched = [...new Set([...this.#remote.channelsOf(w.gw, shard), ...Object.keys(w.channels)])];
        this.#notifyAround(touched, () => this.#remote.snapshot(w.gw, shard, w.seq, w.channels, now));
        return;
      }
      case 'sync':
        if (w.from !== this.gateway && (w.gw === '*' || w.gw === this.gateway)) this.#sendSnapshot(shard);
        return;
      case 'query': {
        const local = this.#local.get(w.channel);
        const users = [...(local?.keys() ?? [])];
        const connections = [...(local?.values() ?? [])].reduce((a, b) => a + b, 0);
        const clients: PresenceClientWire[] = [];
        if (w.clients) {
          for (const client of this.localClients(w.channel)) {
            if (clients.length === MAX_PRESENCE_CLIENTS) break;
            clients.push(client);
          }
        }
        this.#send(shard, {
          kind: 'answer',
          gw: this.gateway,
          id: w.id,
          users,
          connections,
          ...(w.clients ? { clients } : {}),
        });
        return;
      }
      case 'list': {
        const channels: Record<string, number> = {};
        for (const [channel, n] of this.localChannels()) if (channel.startsWith(w.prefix)) channels[channel] = n;
        this.#send(shard, { kind: 'channels', gw: this.gateway, id: w.id, channels });
        return;
      }
      default:
        return;
    }
  }

  /** Runs `apply`, then tells local followers of each channel whose list it changed. */
  #notifyAround(channels: string[], apply: () => void): void {
    const before = channels.map((c) => this.list(c));
    apply();
    channels.forEach((channel, i) => {
      this.#notify(channel, before[i] ?? [], this.list(channel));
    });
  }

  #notify(channel: string, before: string[], after: string[]): void {
    const was = new Set(before);
    const now = new Set(after);
    const joined = after.filter((u) => !was.has(u));
    const left = before.filter((u) => !now.has(u));
    if (joined.length > 0 || left.length > 0) this.onChange(channel, after, { joined, left });
  }

  /** Keeps the list followers last saw, before the first local change of a coalescing window. */
  #remember(channel: string): void {
    if (!this.#before.has(channel)) this.#before.set(channel, this.list(channel));
  }

  #changed(channel: string, user: string, present: 0 | 1): void {
    this.#outbox[shardOf(channel)]?.set(`${channel}\0${user}`, [channel, user, present]);
    if (this.#stopped) this.#flush();
    else this.#flushTimer ??= setTimeout(() => this.#flush(), this.coalesceMs);
  }

  #flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    for (const [channel, before] of this.#before) this.#notify(channel, before, this.list(channel));
    this.#before.clear();
    for (let shard = 0; shard < PRESENCE_SHARDS; shard++) this.#flushShard(shard);
  }

  #flushShard(shard: number): void {
    const outbox = this.#outbox[shard];
    if (!outbox || outbox.size === 0) return;
    const changes = [...outbox.values()];
    outbox.clear();
    this.#seqs[shard] = (this.#seqs[shard] ?? 0) + 1;
    this.#send(shard, { kind: 'delta', gw: this.gateway, seq: this.#seqs[shard] ?? 0, changes });
  }

  #sendSnapshot(shard: number): void {
    this.#flushShard(shard); // the snapshot's number then covers every change made so far
    const channels: Record<string, string[]> = {};
    for (const [channel, users] of this.#local) if (shardOf(channel) === shard) channels[channel] = [...users.keys()];
    this.#send(shard, { kind: 'snapshot', gw: this.gateway, seq: this.#seqs[shard] ?? 0, channels });
  }

  #askSnapshot(gw: string, shard: number): void {
    const key = `${gw}/${shard}`;
    const now = Date.now();
    if (now - (this.#asked.get(key) ?? 0) < 1000) return;
    this.#asked.set(key, now);
    this.#send(shard, { kind: 'sync', from: this.gateway, gw });
  }

  #forget(gw: string): void {
    this.#notifyAround(this.#remote.channelsOf(gw), () => this.#remote.drop(gw));
    for (let shard = 0; shard < PRESENCE_SHARDS; shard++) this.#asked.delete(`${gw}/${shard}`);
  }

  #heartbeat(): void {
    for (const gw of this.#remote.silent(Date.now())) this.#forget(gw);
    void this.#publish(PRESENCE_CHANNEL, { kind: 'alive', gw: this.gateway, seqs: this.#seqs, ttlMs: this.ttlMs });
  }

  #send(shard: number, m: PresenceWire): void {
    const chain = (this.#chains[shard] ?? Promise.resolve()).then(() => this.#publish(shardChannel(shard), m));
    this.#chains[shard] = chain;
  }

  async #publish(channel: string, m: PresenceWire): Promise<void> {
    // Presence is best effort between heartbeats: a failed announcement is repaired by the next
    // heartbeat's numbers (the others ask for a snapshot).
    await this.bus.publish(channel, presenceMessage(m)).catch(() => {});
  }
}
