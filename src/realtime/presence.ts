import type { Bus, BusMessage } from '../bus/contract.js';

/** The bus channel gateways use to share who is connected where. */
export const PRESENCE_CHANNEL = '_shoal:presence';

interface Report {
  gateway: string;
  channel: string;
  users: string[];
}

/**
 * Presence across gateways without extra infrastructure: each gateway
 * publishes, per channel, the users it holds (a full snapshot, so messages are
 * idempotent) on change and as a heartbeat. Every gateway merges the snapshots
 * it heard within the TTL, so a crashed gateway's users disappear on their own.
 * Users are de-duplicated across tabs and gateways.
 */
export class Presence {
  /** channel → user → number of local connections */
  readonly #local = new Map<string, Map<string, number>>();
  /** channel → gateway → snapshot */
  readonly #remote = new Map<string, Map<string, { users: string[]; at: number }>>();
  /** Channels changed since the last flush. */
  readonly #dirty = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    readonly bus: Bus,
    readonly gateway: string,
    readonly onChange: (channel: string, users: string[]) => void,
    readonly heartbeatMs = 5000,
    readonly ttlMs = 15_000,
    /**
     * Changes within this window are announced together. A snapshot per join made a burst
     * of n joins cost O(n²) (each a full list, sorted, published and merged by every gateway).
     */
    readonly coalesceMs = 100,
  ) {}

  async start(): Promise<void> {
    await this.bus.subscribe(PRESENCE_CHANNEL);
    this.#timer = setInterval(() => {
      for (const channel of this.#local.keys()) void this.#announce(channel);
      this.#expire();
    }, this.heartbeatMs);
    this.#timer.unref();
  }

  /** Stops the heartbeat. Pending changes go out now, and later ones (sockets closed while stopping) at once. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#flush();
  }

  join(channel: string, user: string): void {
    const users = this.#local.get(channel) ?? new Map<string, number>();
    this.#local.set(channel, users);
    const before = users.get(user) ?? 0;
    users.set(user, before + 1);
    if (before === 0) this.#changed(channel);
  }

  leave(channel: string, user: string): void {
    const users = this.#local.get(channel);
    const count = users?.get(user);
    if (!users || count === undefined) return;
    if (count > 1) {
      users.set(user, count - 1);
      return;
    }
    users.delete(user);
    if (users.size === 0) this.#local.delete(channel);
    this.#changed(channel);
  }

  /** Everyone in the channel on any gateway, sorted. */
  list(channel: string): string[] {
    const all = new Set(this.#local.get(channel)?.keys() ?? []);
    const now = Date.now();
    for (const [gw, snap] of this.#remote.get(channel) ?? []) {
      if (gw !== this.gateway && now - snap.at < this.ttlMs) for (const u of snap.users) all.add(u);
    }
    return [...all].sort();
  }

  /** Feed for messages on PRESENCE_CHANNEL. */
  receive(m: BusMessage): void {
    let r: Report;
    try {
      r = JSON.parse(m.data) as Report;
    } catch {
      return;
    }
    if (r.gateway === this.gateway || typeof r.channel !== 'string' || !Array.isArray(r.users)) return;
    const byGateway = this.#remote.get(r.channel) ?? new Map();
    this.#remote.set(r.channel, byGateway);
    const before = this.list(r.channel).join('\n');
    byGateway.set(r.gateway, { users: r.users.filter((u) => typeof u === 'string'), at: Date.now() });
    const after = this.list(r.channel);
    if (after.join('\n') !== before) this.onChange(r.channel, after);
  }

  #changed(channel: string): void {
    this.#dirty.add(channel);
    if (this.#stopped) this.#flush();
    else this.#flushTimer ??= setTimeout(() => this.#flush(), this.coalesceMs);
  }

  #flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const channels = [...this.#dirty];
    this.#dirty.clear();
    for (const channel of channels) {
      this.onChange(channel, this.list(channel));
      void this.#announce(channel);
    }
  }

  async #announce(channel: string): Promise<void> {
    const users = [...(this.#local.get(channel)?.keys() ?? [])];
    const report: Report = { gateway: this.gateway, channel, users };
    await this.bus.publish(PRESENCE_CHANNEL, { event: 'presence', data: JSON.stringify(report) }).catch(() => {});
  }

  #expire(): void {
    const now = Date.now();
    for (const [channel, byGateway] of this.#remote) {
      let changed = false;
      for (const [gw, snap] of byGateway) {
        if (now - snap.at >= this.ttlMs) {
          byGateway.delete(gw);
          changed = changed || snap.users.length > 0;
        }
      }
      if (byGateway.size === 0) this.#remote.delete(channel);
      if (changed) this.onChange(channel, this.list(channel));
    }
  }
}
