import { CHANNEL_RULE, isValidChannel } from '../protocol/index.js';
import { safeCall } from './emitter.js';
import type { ChannelMessage, PresenceChange } from './types.js';

type AnyHandler = (message: ChannelMessage) => void;
type PresenceHandler = (users: string[], change: PresenceChange) => void;

/** Diffs two lists, so listeners get join/leave events also across reconnects and over SSE. */
function presenceChange(before: readonly string[], after: readonly string[]): PresenceChange {
  const was = new Set(before);
  const now = new Set(after);
  return { joined: after.filter((u) => !was.has(u)), left: before.filter((u) => !now.has(u)) };
}

/**
 * What the app follows, per channel: message handlers and presence listeners, and the last
 * presence list seen. Knows nothing of connections; the client asks it what is wanted.
 */
export class Follows {
  readonly #handlers = new Map<string, Set<AnyHandler>>();
  readonly #presence = new Map<string, Set<PresenceHandler>>();
  readonly #lastPresence = new Map<string, string[]>();

  wants(channel: string): boolean {
    return this.#handlers.has(channel) || this.#presence.has(channel);
  }

  followsPresence(channel: string): boolean {
    return this.#presence.has(channel);
  }

  wanted(): string[] {
    return [...new Set([...this.#handlers.keys(), ...this.#presence.keys()])];
  }

  presenceChannels(): string[] {
    return [...this.#presence.keys()];
  }

  /**
   * Adds a handler or a presence listener. `onFirst` runs when the channel was not wanted before,
   * `onLast` when the returned stop function leaves it wanted by nothing.
   */
  add(
    kind: 'messages' | 'presence',
    channel: string,
    fn: AnyHandler | PresenceHandler,
    onFirst: () => void,
    onLast: () => void,
  ): () => void {
    if (!isValidChannel(channel)) {
      throw new TypeError(`"${channel}" is not a valid channel name: use ${CHANNEL_RULE}`);
    }
    const map = (kind === 'messages' ? this.#handlers : this.#presence) as Map<string, Set<typeof fn>>;
    const was = this.wants(channel);
    let set = map.get(channel);
    if (!set) {
      set = new Set();
      map.set(channel, set);
    }
    set.add(fn);
    if (!was) onFirst();
    return () => {
      const current = map.get(channel);
      if (!current?.delete(fn)) return;
      if (current.size === 0) map.delete(channel);
      if (!this.wants(channel)) onLast();
    };
  }

  /** Stops one handler, or all of the channel's; true when the channel is then wanted by nothing. */
  removeHandlers(channel: string, handler?: AnyHandler): boolean {
    const set = this.#handlers.get(channel);
    if (!set) return false;
    if (handler) set.delete(handler);
    if (!handler || set.size === 0) this.#handlers.delete(channel);
    return !this.wants(channel);
  }

  /** Drops everything following the channel (the server removed this client from it). */
  drop(channel: string): void {
    this.#handlers.delete(channel);
    this.#presence.delete(channel);
  }

  lastPresence(channel: string): string[] | undefined {
    return this.#lastPresence.get(channel);
  }

  forgetPresence(channel: string): void {
    this.#lastPresence.delete(channel);
  }

  /** A presence list arrived: kept even with no listener left, so a later listener starts from it. */
  presenceChanged(channel: string, users: string[]): void {
    const change = presenceChange(this.#lastPresence.get(channel) ?? [], users);
    this.#lastPresence.set(channel, [...users]);
    for (const l of [...(this.#presence.get(channel) ?? [])]) safeCall(l, [...users], change);
  }

  deliver(message: ChannelMessage): void {
    for (const h of [...(this.#handlers.get(message.channel) ?? [])]) safeCall(h, message);
  }
}
