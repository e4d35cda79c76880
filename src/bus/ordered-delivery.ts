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
}

export type BacklogFetch = (channel: string, after: number) => Promise<Backlog>;

interface Track {
  /** Undefined until subscribe() knows the baseline; messages wait in `queue` meanwhile. */
  epoch: string | undefined;
  last: number;
  queue: BusMessage[];
  busy: boolean;
  resync: boolean;
  /** Callers of resync() waiting for its catch-up: told whether history answered. */
  waiters: ((ok: boolean) => void)[];
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
      this.tracks.set(channel, { epoch: undefined, last: 0, queue: [], busy: true, resync: false, waiters: [] });
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
    if (!t.busy && t.queue.length === 0 && message.epoch === t.epoch && message.offset === t.last + 1) {
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
      // A new incarnation of the log: all of it was published after we subscribed.
      if (m.epoch !== t.epoch) {
        t.epoch = m.epoch;
        t.last = 0;
      }
      if (m.offset <= t.last) continue;
      if (m.offset > t.last + 1) await this.fill(channel, t, m.offset - 1);
      if (this.tracks.get(channel) !== t || m.epoch !== t.epoch || m.offset <= t.last) continue;
      t.last = m.offset;
      deliver(this.handler(), m, this.logger);
    }
  }

  /** false when history could not be read. */
  private async fill(channel: string, t: Track, upTo: number): Promise<boolean> {
    for (let page = 0; page < MAX_PAGES && t.last < upTo; page++) {
      let backlog: Backlog;
      try {
        backlog = await this.fetch(channel, t.last);
      } catch (err) {
        // The next message after the gap retries; nothing is delivered out of order meanwhile.
        this.warn(err, channel);
        return false;
      }
      if (this.tracks.get(channel) !== t) return true;
      if (backlog.epoch !== t.epoch) {
        if (upTo !== Number.MAX_SAFE_INTEGER) return true; // the waiting message belongs to the old log
        t.epoch = backlog.epoch;
        t.last = 0;
        continue;
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
        deliver(this.handler(), m, this.logger);
      }
    }
    return true;
  }
}
