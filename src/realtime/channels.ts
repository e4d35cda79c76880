import type { Bus, BusMessage } from '../bus/contract.js';
import { isInternalChannel, isPersonalChannel } from '../protocol/channels.js';
import type { Cursor } from '../protocol/messages.js';
import { type ChannelState, type Connection, frameOf } from './connection.js';
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

  /**
   * Joins a channel: false when it did not, because a join of it is already in flight (that one
   * answers) or the channel was left before the join answered.
   */
  async join(c: Connection, channel: string, from?: Cursor): Promise<boolean> {
    const state = this.enter(c, channel);
    return state !== null && this.complete(c, channel, state, from);
  }

  /**
   * The synchronous half of a join: the connection is a member from here on, so a server command
   * or a last leave elsewhere sees it, and live messages wait in its place. Null when it already
   * is a member (a second `sub` while the first is in flight: the first answers).
   */
  enter(c: Connection, channel: string, at?: Cursor): ChannelState | null {
    let set = this.#members.get(channel);
    if (!set) {
      set = new Set();
      this.#members.set(channel, set);
    }
    if (set.has(c)) return null;
    // Membership first, so a concurrent last leave cannot unsubscribe the bus under this join.
    set.add(c);
    if (c.userId && !isPersonalChannel(channel)) this.presence.join(channel, c.userId);
    return c.enter(channel, at);
  }

  /** The rest of a join begun with enter(): the bus subscription, then the connection's start. */
  async complete(c: Connection, channel: string, state: ChannelState, from?: Cursor): Promise<boolean> {
    try {
      let subscribed = this.#subscriptions.get(channel);
      if (!subscribed) {
        subscribed = this.bus.subscribe(channel);
        this.#subscriptions.set(channel, subscribed);
        subscribed.catch(() => this.#subscriptions.delete(channel));
      }
      // Until the bus delivers live messages, a position read now could miss the ones in between.
      await subscribed;
      if (c.closed) {
        this.leave(c, channel);
        return false;
      }
      return (await c.join(channel, from, state)) !== null;
    } catch (err) {
      // Half-joined state would buffer live messages forever: undo it, the client may retry.
      if (c.channels.get(channel) === state) this.leave(c, channel);
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
