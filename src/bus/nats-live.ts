import type { Msg, NatsConnection, Subscription } from 'nats';
import type { Logger } from '../core/logger.js';
import { fullJitter, sleep } from '../core/timing.js';
import type { Position } from './contract.js';
import { decodeEntry } from './nats-log.js';
import type { OrderedDelivery } from './ordered-delivery.js';

/** Channels caught up at once after a reconnect: thousands at a time would time out against the stream leader. */
const CATCH_UP_POOL = 64;
const MAX_CATCH_UP_ATTEMPTS = 30;
const MAX_PAUSE_MS = 2000;

export interface RepublishedLiveSettings {
  /** The connection, made on first use. */
  connection: () => Promise<NatsConnection>;
  liveSubjectOf: (channel: string) => string;
  /** The channel's head, through the stream leader (BusBase-bounded). */
  position: (channel: string) => Promise<Position>;
  /** A republished entry's stream sequence: keeps the appender's view of the channel's tail fresh. */
  learn: (channel: string, tail: { epoch: string; offset: number; seq: number }) => void;
  delivery: OrderedDelivery;
  closed: () => boolean;
  logger: Logger;
}

/**
 * Live delivery without a JetStream consumer per channel: the stream republishes every stored
 * entry to the channel's live subject, and one plain subscription per subscribed channel receives
 * it; the server keeps only interest for it. What the plain subscription misses (a reconnect,
 * a route to a dying server) OrderedDelivery reads from the stream: at a gap in the offsets, and
 * for every channel after a reconnect or a change in the cluster's servers.
 *
 * A subscription is in place before the head is read: the SUB goes out first on the connection
 * (and on each route ahead of the head request), so every entry after that head is republished
 * to it.
 */
export function republishedLive(o: RepublishedLiveSettings) {
  const subscriptions = new Map<string, Subscription>();
  let watching: NatsConnection | undefined;
  let generation = 0;

  const onLive = (channel: string, m: Msg) => {
    const [epoch, offset, event, data, publishedAt] = decodeEntry(m);
    const seq = Number(m.headers?.get('Nats-Sequence'));
    if (seq > 0) o.learn(channel, { epoch, offset, seq });
    if (offset === 0) return; // the marker a new log starts with
    o.delivery.push({ channel, epoch, offset, event, data, publishedAt });
  };

  /** Every channel reads what it missed, CATCH_UP_POOL at a time; a newer call supersedes this one. */
  const catchUpAll = () => {
    const mine = ++generation;
    const channels = o.delivery.channels;
    let next = 0;
    const current = () => mine === generation && !o.closed();
    const catchUp = async (channel: string) => {
      for (let attempt = 1; attempt <= MAX_CATCH_UP_ATTEMPTS && current(); attempt++) {
        if (await o.delivery.resync(channel)) return;
        await sleep(fullJitter(MAX_PAUSE_MS, attempt, 50));
      }
      if (current()) o.logger.error({ channel }, 'bus could not catch up a channel after a reconnect');
    };
    const worker = async () => {
      while (next < channels.length && current()) await catchUp(channels[next++] as string);
    };
    for (let w = 0; w < Math.min(CATCH_UP_POOL, channels.length); w++) void worker();
  };

  const watch = async (nc: NatsConnection) => {
    for await (const s of nc.status()) {
      if (o.closed()) return;
      // A reconnect may have lost republished entries in flight; so may a server leaving the cluster
      // (the stream's leader republishes, and its route to our server died with it).
      const deleted = s.type === 'update' && ((s.data as { deleted?: string[] }).deleted?.length ?? 0) > 0;
      if (s.type === 'reconnect' || deleted) catchUpAll();
    }
  };

  return {
    async listen(channel: string): Promise<void> {
      const nc = await o.connection();
      if (watching !== nc) {
        watching = nc;
        void watch(nc);
      }
      o.delivery.hold(channel);
      subscriptions.get(channel)?.unsubscribe();
      const sub = nc.subscribe(o.liveSubjectOf(channel), {
        callback: (err, m) => {
          if (!err && subscriptions.get(channel) === sub) onLive(channel, m);
        },
      });
      subscriptions.set(channel, sub);
      try {
        o.delivery.start(channel, await o.position(channel));
      } catch (err) {
        if (subscriptions.get(channel) === sub) {
          subscriptions.delete(channel);
          o.delivery.drop(channel);
        }
        sub.unsubscribe();
        throw err;
      }
    },

    unlisten(channel: string): void {
      o.delivery.drop(channel);
      subscriptions.get(channel)?.unsubscribe();
      subscriptions.delete(channel);
    },

    close(): void {
      generation++;
      for (const channel of o.delivery.channels) o.delivery.drop(channel);
      subscriptions.clear(); // closing the connection ends them
    },
  };
}
