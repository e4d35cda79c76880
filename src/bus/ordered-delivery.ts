import type { Logger } from '../core/logger.js';
import type { BusMessage, MessageHandler, Position } from './contract.js';
import { deliver } from './history.js';

/** What a bus's own history says about a channel after `after`: the catch-up source for gaps. */
export interface Backlog {
  epoch: string;
  /** Newest offset of the log. */
  last: number;
  /** Offsets > after, oldest first (one page). */
  messages: BusMessage[];
  /** false when history no longer reaches back to after + 1. */
  complete: boolean;
  /** The asked epoch is an earlier incarnation this log continues: `messages` follow this offset (ReadResult.from). */
  from?: number;
}

/** History after `after`; `epoch` is the subscriber's, so a log that continues it says from where. */
export type BacklogFetch = (channel: string, after: number, epoch: string | undefined) => Promise<Backlog>;

interface Track {
  /** Undefined until subscribe() knows the baseline; messages wait in `queue` meanwhile. */
  epoch: string | undefined;
  last: number;
  queue: BusMessage[];
  busy: boolean;
  resync: boolean;
  /** Callers of resync() waiting for its catch-up: told whether history answered. */
  waiters: ((ok: boolean) => void)[];
  /** Set when the log moved to an epoch that continues ours: told with the next message delivered. */
  continues: Position | undefined;
}

// Bounds one catch-up: a subscriber that is further behind than this many pages skips ahead instead.
const MAX_PAGES = 50;

/**
 * Live delivery over a transport that may drop messages around a reconnect (Redis
 * pub/sub, a per-client AMQP queue): per channel the handler gets every offset once,
 * in order. A message that arrives after a gap first pulls the missing offsets from
 * history, and resync() (called after a reconnect) catches up from the last one delivered.
 */
export class OrderedDelivery {
  private readonly tracks = new Map<string, Track>();

  constructor(
    private readonly fetch: BacklogFetch,
    private readonly handler: () => MessageHandler | undefined,
    private readonly logger: Logger,
  ) {}

  /** A failed catch-up is not fatal: the next message (or resync) retries it. */
  private warn(err: unknown, channel: string): void {
    this.logger.warn({ channel, err: String(err) }, 'bus catch-up failed; retried on the next message');
  }

  get channels(): string[] {
    return [...this.tracks.keys()];
  }

  has(channel: string): boolean {
    return this.tracks.has(channel);
  }

  /** Starts buffering a channel's messages until start() gives the position they continue from. */
  hold(channel: string): void {
    if (!this.tracks.has(channel)) {
      this.tracks.set(channel, {
        epoch: undefined,
        last: 0,
        queue: [],
        busy: true,
        resync: false,
        waiters: [],
        continues: undefined,
      });
    }
  }

  /** Everything up to `position` was published before subscribe() resolved: it is not delivered. */
  start(channel: string, position: Position): void {
    const t = this.tracks.get(channel);
    if (!t || t.epoch !== undefined) return;
    t.epoch = position.epoch;
    t.last = position.offset;
    t.busy = false;
    this.drain(channel, t);
  }

  drop(channel: string): void {
    const t = this.tracks.get(channel);
    this.tracks.delete(channel);
    for (const done of t?.waiters.splice(0) ?? []) done(true);
  }

  push(message: BusMessage): void {
    const t = this.tracks.get(message.channel);
    if (!t) return;
    if (
      !t.busy &&
      t.queue.length === 0 &&
      message.epoch === t.epoch &&
      message.offset === t.last + 1 &&
      t.continues === undefined
    ) {
      t.last = message.offset;
      deliver(this.handler(), message, this.logger);
      return;
    }
    t.queue.push(message);
    this.drain(message.channel, t);
  }

  /**
   * After a reconnect: deliver what was published while the transport was down. Resolves false
   * when history could not be read (the caller may retry), true once caught up or not subscribed.
   */
  resync(channel: string): Promise<boolean> {
    const t = this.tracks.get(channel);
    if (!t || t.epoch === undefined) return Promise.resolve(true);
    t.resync = true;
    const done = new Promise<boolean>((resolve) => t.waiters.push(resolve));
    this.drain(channel, t);
    return done;
  }

  private drain(channel: string, t: Track): void {
    if (t.busy || (t.queue.length === 0 && !t.resync)) return;
    t.busy = true;
    void this.run(channel, t).finally(() => {
      t.busy = false;
      if (this.tracks.get(channel) === t) this.drain(channel, t);
    });
  }

  private async run(channel: string, t: Track): Promise<void> {
    while (this.tracks.get(channel) === t) {
      if (t.resync) {
        t.resync = false;
        const waiters = t.waiters.splice(0);
        const ok = await this.fill(channel, t, Number.MAX_SAFE_INTEGER);
        for (const done of waiters) done(ok);
        continue;
      }
      const m = t.queue.shift();
      if (!m) return;
      if (m.epoch === t.epoch && m.offset <= t.last) continue;
      // A new epoch: history says whether it continues ours (a promoted replica) or starts over.
      if (m.epoch !== t.epoch || m.offset > t.last + 1) {
        const ok = await this.fill(channel, t, m.offset - 1, m.epoch);
        if (!ok && m.epoch !== t.epoch && this.tracks.get(channel) === t) {
          // History did not answer: deliver from this message on, as a log that started over.
          t.epoch = m.epoch;
          t.last = m.offset - 1;
        }
      }
      if (this.tracks.get(channel) !== t || m.epoch !== t.epoch || m.offset <= t.last) continue;
      t.last = m.offset;
      this.deliver(t, m);
    }
  }

  private deliver(t: Track, m: BusMessage): void {
    const continues = t.continues;
    t.continues = undefined;
    deliver(this.handler(), continues ? { ...m, continues } : m, this.logger);
  }

  /**
   * Delivers history after t.last up to `upTo`; `target` is the epoch of the message waiting for
   * it (undefined on a resync: whatever the log's epoch is now). false when history could not be read.
   */
  private async fill(channel: string, t: Track, upTo: number, target?: string): Promise<boolean> {
    for (let page = 0; page < MAX_PAGES && (t.last < upTo || t.epoch !== (target ?? t.epoch)); page++) {
      let backlog: Backlog;
      try {
        backlog = await this.fetch(channel, t.last, t.epoch);
      } catch (err) {
        // The next message after the gap retries; nothing is delivered out of order meanwhile.
        this.warn(err, channel);
        return false;
      }
      if (this.tracks.get(channel) !== t) return true;
      if (backlog.epoch !== t.epoch) {
        if (target !== undefined && target !== backlog.epoch) return true; // the waiting message is of another log
        const old = t.epoch;
        t.epoch = backlog.epoch;
        if (backlog.from === undefined || old === undefined) {
          // A new log: all of it was published after we subscribed.
          t.last = 0;
          continue;
        }
        t.last = backlog.from;
        t.continues = { epoch: old, offset: backlog.from };
      }
      if (!backlog.complete) {
        // Trimmed past what we missed: skip ahead, the rest can no longer be replayed.
        t.last = Math.max(t.last, Math.min(upTo, backlog.last));
        return true;
      }
      const fresh = backlog.messages.filter((m) => m.offset > t.last && m.offset <= upTo);
      if (fresh.length === 0) return true;
      for (const m of fresh) {
        t.last = m.offset;
        this.deliver(t, m);
      }
    }
    return true;
  }
}
