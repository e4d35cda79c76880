import type { Cursor, ServerMessage } from '../protocol/index.js';

type Msg = Extract<ServerMessage, { type: 'msg' }>;
type Subscribed = Extract<ServerMessage, { type: 'subscribed' }>;

/**
 * What to do with an incoming message:
 * - deliver: the next offset, in order;
 * - duplicate: already delivered (a replay overlapping live traffic, or a resume) — drop;
 * - reset: a new epoch arrived without a `subscribed` first — the log was lost, reload, then deliver;
 * - gap: offsets are missing — never deliver past a hole; resubscribe from the cursor instead.
 */
export type Verdict = 'deliver' | 'duplicate' | 'reset' | 'gap';

/**
 * The client's position in every channel it follows: the last (epoch, offset)
 * handed to the app. It is what the SDK resumes from on any gateway, and it is
 * the client's own guarantee that no offset is delivered twice or out of order,
 * whatever the transports and gateways do.
 */
export class ChannelCursors {
  readonly #cursors = new Map<string, Cursor>();

  get(channel: string): Cursor | undefined {
    return this.#cursors.get(channel);
  }

  /** Where delivery of a channel the client has no position in yet starts (hello's `starts`). */
  start(channel: string, at: Cursor): void {
    if (!this.#cursors.has(channel)) this.#cursors.set(channel, { epoch: at.epoch, offset: at.offset });
  }

  delete(channel: string): void {
    this.#cursors.delete(channel);
  }

  /** Cursors of the given channels (those the client still follows). */
  snapshot(channels: Iterable<string>): Map<string, Cursor> {
    const out = new Map<string, Cursor>();
    for (const ch of channels) {
      const c = this.#cursors.get(ch);
      if (c) out.set(ch, { ...c });
    }
    return out;
  }

  /**
   * Applies a `subscribed` answer. Returns true when the app must reload the
   * channel's state: the client had a position, the gateway could not replay
   * from it, and it is not simply the position the client already holds.
   */
  subscribed(m: Subscribed): boolean {
    const had = this.#cursors.get(m.channel);
    // Replay follows; the cursor stays where the app is, so a hole shows up as a gap, never as a skip.
    if (m.recovered && had && had.epoch === m.epoch) return false;
    if (m.recovered && had) {
      // The log carries on under a new epoch (a replica promoted after a failover), from the
      // offset given: what the app has stands, and what follows is new to it.
      had.epoch = m.epoch;
      had.offset = m.offset;
      return false;
    }
    this.#cursors.set(m.channel, { epoch: m.epoch, offset: m.offset });
    if (!had) return false;
    // recovered:false at exactly our position (a bus without history, nothing missed): no hole to report.
    return !(had.epoch === m.epoch && had.offset === m.offset);
  }

  /** Classifies a message and, for deliver/reset, advances the cursor past it. */
  accept(m: Msg): Verdict {
    const c = this.#cursors.get(m.channel);
    if (!c) {
      this.#cursors.set(m.channel, { epoch: m.epoch, offset: m.offset });
      return 'deliver';
    }
    if (c.epoch !== m.epoch) {
      c.epoch = m.epoch;
      c.offset = m.offset;
      return 'reset';
    }
    if (m.offset <= c.offset) return 'duplicate';
    if (m.offset !== c.offset + 1) return 'gap';
    c.offset = m.offset;
    return 'deliver';
  }
}
