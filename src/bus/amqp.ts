import { ConfigError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';
import { settleWithin } from '../core/timing.js';
import { AmqpLink, type Amqplib, amqpAdvice } from './amqp-link.js';
import { decode, ensureLog, logNamesForKey, routingKey, scanStream } from './amqp-log.js';
import { connectionUrl } from './amqp-namespace.js';
import { parsePartitions, partitionKey, partitionOf } from './amqp-partition.js';
import { appendBatch, type PartitionLog, peekPartition } from './amqp-sequencer.js';
import { ANCHOR_EVERY, PartitionView } from './amqp-view.js';
import { BusBase, type BusDriver, type LogRange } from './base.js';
import type { Bus, BusMessage, BusOptions, PublishInput } from './contract.js';
import { OrderedDelivery } from './ordered-delivery.js';

export { dropAmqpNamespace } from './amqp-namespace.js';

export interface AmqpBusOptions extends BusOptions {
  /** `amqp://user:pass@host:5672/vhost` or `amqps://…`; `?partitions=N` sets the partition count. */
  url: string;
  /** Partitions of the namespace (queue pairs on the broker); every client of a namespace must use the same. Default 16. */
  partitions?: number;
}

interface Pending {
  channel: string;
  input: PublishInput;
  resolve: (m: BusMessage) => void;
  reject: (err: unknown) => void;
}

// Publishes queued on one partition while a transaction is in flight go out together in the next.
const MAX_BATCH = 200;
const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * RabbitMQ bus (AMQP 0-9-1, RabbitMQ 3.9+ for stream queues). A namespace has a fixed number
 * of partitions; per partition a token queue sequences appends and a stream queue keeps the
 * history of every channel hashed to it (amqp-log.ts, amqp-sequencer.ts), so the broker
 * holds 2 × partitions queues however many channels there are. A topic exchange fans out to
 * one exclusive auto-delete queue per bus client, bound per subscribed channel.
 * After a connection loss the client reconnects, re-declares, re-binds, and catches every
 * subscribed channel up from the last offset it delivered, out of the stream.
 */
export async function amqpBus(options: AmqpBusOptions): Promise<Bus> {
  const { url, label, partitions: fromUrl } = connectionUrl(options.url);
  const partitions = options.partitions !== undefined ? parsePartitions(options.partitions) : fromUrl;
  let linkError = (): unknown => undefined;
  const base = new BusBase(options, {
    label,
    advice: () => amqpAdvice(linkError()),
    lastError: () => linkError(),
  });
  const { namespace: ns, historySize, historyTtlMs: ttlMs, timeoutMs } = base;
  if (!/^[A-Za-z0-9_.:-]+$/.test(ns)) {
    throw new ConfigError('amqp bus: namespace may hold only letters, digits and _ . : -');
  }
  const lib = await importOptional<Amqplib>('amqplib', 'The AMQP (RabbitMQ) message bus');
  const exchange = `shoal.${ns}`;
  const registry = `shoal.${ns}.registry`;
  const retention = { maxAgeS: Math.max(1, Math.ceil(ttlMs / 1000)) };

  /** routing key → channel, for every subscribed channel. */
  const routes = new Map<string, string>();
  let subscriber: { conn: unknown; queue: Promise<string> } | undefined;

  const link = new AmqpLink(lib, url, timeoutMs, async (conn) => {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    await ch.assertExchange(exchange, 'topic', { durable: true });
    await ch.assertQueue(registry, { durable: true });
    await ch.close();
    if (routes.size > 0) rebind(0);
  });
  linkError = () => link.lastError;

  /** After a reconnect the old client queue is gone with its connection: bind a new one, then replay the gap. */
  const rebind = (attempt: number) => {
    subscriberQueue().then(
      () => {
        for (const channel of delivery.channels) void delivery.resync(channel);
      },
      (err: unknown) => {
        link.lastError = err;
        if (!base.closed && attempt < 30) setTimeout(() => rebind(attempt + 1), 1000).unref();
      },
    );
  };

  const subscriberQueue = async (): Promise<string> => {
    const conn = await link.ready();
    if (subscriber?.conn !== conn) {
      const queue = (async () => {
        const ch = await link.channel('subscriber');
        const { queue: name } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
        await ch.consume(
          name,
          (m) => {
            const channel = m ? routes.get(m.fields.routingKey) : undefined;
            if (m && channel !== undefined) delivery.push(decode(channel, m.content));
          },
          { noAck: true },
        );
        for (const key of routes.keys()) await ch.bindQueue(name, exchange, key);
        return name;
      })();
      subscriber = { conn, queue };
      queue.catch(() => {
        if (subscriber?.queue === queue) subscriber = undefined;
      });
    }
    return subscriber.queue;
  };

  // Inner waits end a little earlier than the call's deadline, so their own message wins the race.
  const call = <T>(what: string, op: (deadline: number) => Promise<T>): Promise<T> =>
    base.call(what, (deadline) => op(deadline - timeoutMs * 0.1));

  const logs = new Map<number, PartitionLog>();
  const logOf = (index: number): PartitionLog => {
    let p = logs.get(index);
    if (!p) {
      const names = logNamesForKey(ns, partitionKey(partitions, index));
      const view = new PartitionView(Math.ceil(historySize / ANCHOR_EVERY) + 1);
      p = { link, names, view, exchange, checkpointEveryMs: ttlMs / 4 };
      logs.set(index, p);
    }
    return p;
  };
  /**
   * Partitions whose log this client has seen exist, or is making sure of. Calls on one partition
   * share one check: two of them making a missing log at once would each put a token in its queue,
   * and a partition with two tokens gives out every offset twice, under two epochs.
   */
  const known = new Map<number, Promise<void>>();
  const ensured = (index: number, names: PartitionLog['names'], deadline: number): Promise<void> => {
    let made = known.get(index);
    if (!made) {
      made = ensureLog(link, names, registry, retention, deadline);
      known.set(index, made);
      made.catch(() => {
        if (known.get(index) === made) known.delete(index);
      });
    }
    return made;
  };
  /** Makes the partition's log exist (once per client), then runs `op`; a log deleted meanwhile is made again once. */
  const withLog = async <T>(index: number, deadline: number, op: (p: PartitionLog) => Promise<T>): Promise<T> => {
    const p = logOf(index);
    for (let attempt = 0; ; attempt++) {
      const made = ensured(index, p.names, deadline);
      await made;
      try {
        return await op(p);
      } catch (err) {
        if ((err as { code?: number }).code !== 404 || attempt > 0) throw err;
        if (known.get(index) === made) known.delete(index);
        p.view.invalidate();
      }
    }
  };
  const withChannelLog = <T>(channel: string, deadline: number, op: (p: PartitionLog) => Promise<T>): Promise<T> =>
    withLog(partitionOf(channel, partitions), deadline, op);

  /** The channel's head, and where its records after `after` start in the partition stream. */
  const locate = (p: PartitionLog, channel: string, after: number, deadline: number) =>
    peekPartition(p, deadline, (token, view) => {
      const s = view.channels.get(channel);
      return { epoch: token.epoch, last: s?.last ?? 0, lastAt: s?.lastAt ?? -1, start: view.startFor(channel, after) };
    });

  const readLog = (channel: string, after: number, limit: number, deadline: number, epoch?: string) =>
    withChannelLog(channel, deadline, async (p): Promise<LogRange> => {
      const at = await locate(p, channel, after, deadline);
      const none = { epoch: at.epoch, last: at.last, messages: [] };
      // Incomplete or empty whatever the stream holds: no read needed.
      if (epoch !== undefined && epoch !== at.epoch) return none;
      if (after >= at.last || after < at.last - historySize || at.start === undefined) return none;
      const upTo = Math.min(at.last, after + limit);
      const records: BusMessage[] = [];
      // Other channels' records of the partition lie in between: they are read and skipped.
      await scanStream(
        link,
        p.names.stream,
        at.start,
        at.lastAt + 1,
        (_, body) => {
          const r = JSON.parse(body.toString('utf8')) as unknown[];
          if (!Array.isArray(r) || r[5] !== channel || r[0] !== at.epoch || (r[1] as number) <= after) return;
          const m = decode(channel, body);
          records.push(m);
          return m.offset >= upTo || m.offset !== after + records.length;
        },
        deadline,
      );
      const cutoff = Date.now() - ttlMs;
      return { ...none, messages: records.filter((m) => m.publishedAt >= cutoff) };
    });

  const delivery = new OrderedDelivery(
    (channel, after) => base.window(driver, 'catch-up read', channel, after, 500),
    base.currentHandler,
    base.logger,
  );

  // One transaction in flight per partition per client; what queues up meanwhile goes in the next one.
  const lanes = new Map<number, Pending[]>();
  const pump = async (index: number, queue: Pending[]) => {
    while (queue.length > 0) {
      let take = 0;
      for (let bytes = 0; take < Math.min(queue.length, MAX_BATCH) && (take === 0 || bytes < MAX_BATCH_BYTES); take++) {
        const { event, data } = (queue[take] as Pending).input;
        bytes += event.length + data.length;
      }
      const batch = queue.splice(0, take);
      try {
        const sent = await call('publish', (deadline) =>
          withLog(index, deadline, (p) => appendBatch(p, batch, deadline)),
        );
        for (const [i, p] of batch.entries()) p.resolve(sent[i] as BusMessage);
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    lanes.delete(index);
  };

  const driver: BusDriver = {
    kind: 'amqp',
    capabilities: { history: true, shared: true },

    append(channel, input) {
      const index = partitionOf(channel, partitions);
      return new Promise<BusMessage>((resolve, reject) => {
        const queue = lanes.get(index);
        if (queue) queue.push({ channel, input, resolve, reject });
        else {
          const fresh = [{ channel, input, resolve, reject }];
          lanes.set(index, fresh);
          void pump(index, fresh);
        }
      });
    },

    async listen(channel) {
      const key = routingKey(channel);
      delivery.hold(channel);
      routes.set(key, channel);
      try {
        const start = await call('subscribe', (deadline) =>
          withChannelLog(channel, deadline, async (p) => {
            const queue = await subscriberQueue();
            await (await link.channel('subscriber')).bindQueue(queue, exchange, key);
            const at = await locate(p, channel, 0, deadline);
            return { epoch: at.epoch, offset: at.last };
          }),
        );
        delivery.start(channel, start);
      } catch (err) {
        delivery.drop(channel);
        routes.delete(key);
        throw err;
      }
    },

    async unlisten(channel) {
      const key = routingKey(channel);
      delivery.drop(channel);
      routes.delete(key);
      await call('unsubscribe', async () => {
        const queue = await subscriber?.queue;
        if (queue) await (await link.channel('subscriber')).unbindQueue(queue, exchange, key);
      });
    },

    range: (channel, after, limit, deadline, epoch) =>
      readLog(channel, after, limit, deadline - timeoutMs * 0.1, epoch),

    head: (channel, deadline) =>
      withChannelLog(channel, deadline - timeoutMs * 0.1, async (p) => {
        const at = await locate(p, channel, 0, deadline - timeoutMs * 0.1);
        return { epoch: at.epoch, offset: at.last };
      }),

    async ping() {
      await (await link.channel('control')).checkExchange(exchange);
    },

    async close() {
      for (const channel of delivery.channels) delivery.drop(channel);
      routes.clear();
      await settleWithin(link.close(), timeoutMs);
    },
  };
  return base.bus(driver);
}
