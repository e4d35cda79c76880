import type { Bus, BusMessage } from '../bus/contract.js';
import { isInternalChannel, isPersonalChannel } from '../protocol/channels.js';
import type { Cursor } from '../protocol/messages.js';
import { type Connection, frameOf } from './connection.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import type { Presence } from './presence.js';
import type { PresenceClientWire } from './presence-wire.js';

/**
 * Which local connections are in which channel, and the one bus subscription per channel
 * they share: subscribed on the first join, unsubscribed on the last leave.
 */
export class ChannelRegistry {
  readonly #members = new Map<string, Set<Connection>>();
  /** channel → the bus subscription in progress or done; every joiner waits for it, not just the first. */
  readonly #subscriptions = new Map<string, Promise<void>>();

  constructor(
    readonly bus: Bus,
    readonly presence: Presence,
    readonly metrics: GatewayMetrics,
  ) {}

  /** The local connections in a channel. */
  members(channel: string): ReadonlySet<Connection> | undefined {
    return this.#members.get(channel);
  }

  /** App channels with local members and how many: personal and internal channels have no audience to list. */
  *counts(): Iterable<[string, number]> {
    for (const [channel, set] of this.#members) {
      if (!isPersonalChannel(channel) && !isInternalChannel(channel)) yield [channel, set.size];
    }
  }

  /** The local connections with a user in a channel, as presence lists them: [user, gateway/id, info]. */
  *clients(channel: string, gateway: string): Iterable<PresenceClientWire> {
    for (const c of this.#members.get(channel) ?? []) {
      if (c.userId !== null && !c.closed) yield [c.userId, `${gateway}/${c.id}`, c.identity.info];
    }
  }

  async join(c: Connection, channel: string, from?: Cursor): Promise<void> {
    let set = this.#members.get(channel);
    if (!set) {
      set = new Set();
      this.#members.set(channel, set);
    }
    if (set.has(c)) return; // a second `sub` while the first is in flight: the first answers
    // Membership first, so a concurrent last leave cannot unsubscribe the bus under this join.
    set.add(c);
    if (c.userId && !isPersonalChannel(channel)) this.presence.join(channel, c.userId);
    try {
      let subscribed = this.#subscriptions.get(channel);
      if (!subscribed) {
        subscribed = this.bus.subscribe(channel);
        this.#subscriptions.set(channel, subscribed);
        subscribed.catch(() => this.#subscriptions.delete(channel));
      }
      // Until the bus delivers live messages, a position read now could miss the ones in between.
      await subscribed;
      if (c.closed) return this.leave(c, channel);
      await c.join(channel, from);
    } catch (err) {
      // Half-joined state would buffer live messages forever: undo it, the client may retry.
      this.leave(c, channel);
      throw err;
    }
  }

  leave(c: Connection, channel: string): void {
    const set = this.#members.get(channel);
    if (!set?.has(c)) return;
    c.leave(channel);
    if (c.userId && !isPersonalChannel(channel)) this.presence.leave(channel, c.userId);
    set.delete(c);
    if (set.size === 0) {
      this.#members.delete(channel);
      this.#subscriptions.delete(channel);
      void this.bus.unsubscribe(channel).catch(() => {});
    }
  }

  leaveAll(c: Connection): void {
    for (const channel of [...c.channels.keys()]) this.leave(c, channel);
  }

  /** Fan-out of one bus message: encoded once, delivered to every local member. */
  deliver(m: BusMessage): void {
    const subs = this.#members.get(m.channel);
    if (!subs) return;
    this.metrics.messagesIn.inc();
    const frame = frameOf(m);
    for (const c of subs) c.deliver(m, frame);
    this.metrics.messagesOut.inc(subs.size);
  }
}
