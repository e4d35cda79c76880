import { ConfigError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';
import { settleWithin } from '../core/timing.js';
import { AmqpLink, type Amqplib } from './amqp-link.js';
import { appendBatch, decode, ensureLog, type LogNames, logNames, peekToken, readStream } from './amqp-log.js';
import { connectionUrl } from './amqp-namespace.js';
import { BusBase, type BusDriver, type LogRange } from './base.js';
import type { Bus, BusMessage, BusOptions, PublishInput } from './contract.js';
import { OrderedDelivery, warnCatchUp } from './ordered-delivery.js';

export { dropAmqpNamespace } from './amqp-namespace.js';

export interface AmqpBusOptions extends BusOptions {
  /** `amqp://user:pass@host:5672/vhost` or `amqps://…`. */
  url: string;
}

interface Pending {
  input: PublishInput;
  resolve: (m: BusMessage) => void;
  reject: (err: unknown) => void;
}

// Publishes queued on one channel while a transaction is in flight go out together in the next.
const MAX_BATCH = 200;
const MAX_BATCH_BYTES = 1024 * 1024;

/**
 * RabbitMQ bus (AMQP 0-9-1, RabbitMQ 3.9+ for stream queues). Per channel a token queue
 * assigns offsets, a stream queue keeps history, and a topic exchange fans out to one
 * exclusive auto-delete queue per bus client, bound per subscribed channel (see amqp-log.ts).
 * After a connection loss the client reconnects, re-declares, re-binds, and catches every
 * subscribed channel up from the last offset it delivered, out of the stream.
 */
export async function amqpBus(options: AmqpBusOptions): Promise<Bus> {
  const { url, label } = connectionUrl(options.url);
  let linkError = (): unknown => undefined;
  const base = new BusBase(options, {
    label,
    advice: 'Check that RabbitMQ is running and reachable',
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
        for (const channel of delivery.channels) delivery.resync(channel);
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

  const known = new Set<string>();
  /** Makes the channel's log exist (once per client), then runs `op`; a log deleted meanwhile is made again once. */
  const withLog = async <T>(channel: string, deadline: number, op: (names: LogNames) => Promise<T>): Promise<T> => {
    const names = logNames(ns, channel);
    for (let attempt = 0; ; attempt++) {
      if (!known.has(channel)) {
        await ensureLog(link, names, registry, retention, deadline);
        known.add(channel);
      }
      try {
        return await op(names);
      } catch (err) {
        if ((err as { code?: number }).code !== 404 || attempt > 0) throw err;
        known.delete(channel);
      }
    }
  };

  const readLog = (channel: string, after: number, limit: number, deadline: number, epoch?: string) =>
    withLog(channel, deadline, async (names): Promise<LogRange> => {
      const head = await peekToken(link, names.token, deadline);
      const none = { epoch: head.epoch, last: head.offset, messages: [] };
      // Incomplete or empty whatever the stream holds: no read needed.
      if (epoch !== undefined && epoch !== head.epoch) return none;
      if (after >= head.offset || after < head.offset - historySize) return none;
      const records = await readStream(link, names, after, Math.min(head.offset, after + limit), channel, deadline);
      const cutoff = Date.now() - ttlMs;
      return { ...none, messages: records.filter((m) => m.epoch === head.epoch && m.publishedAt >= cutoff) };
    });

  const delivery = new OrderedDelivery(
    (channel, after) => base.window(driver, 'catch-up read', channel, after, 500),
    base.currentHandler,
    warnCatchUp('amqp'),
  );

  // One transaction in flight per channel per client; what queues up meanwhile goes in the next one.
  const lanes = new Map<string, Pending[]>();
  const pump = async (channel: string, queue: Pending[]) => {
    while (queue.length > 0) {
      let take = 0;
      for (let bytes = 0; take < Math.min(queue.length, MAX_BATCH) && (take === 0 || bytes < MAX_BATCH_BYTES); take++) {
        const { event, data } = (queue[take] as Pending).input;
        bytes += event.length + data.length;
      }
      const batch = queue.splice(0, take);
      const publishedAt = Date.now();
      try {
        const sent = await call('publish', (deadline) =>
          withLog(channel, deadline, (names) =>
            appendBatch(
              link,
              names,
              exchange,
              batch.length,
              (epoch, offset, i) => {
                const { event, data } = (batch[i] as Pending).input;
                return { channel, epoch, offset, event, data, publishedAt };
              },
              deadline,
            ),
          ),
        );
        for (const [i, p] of batch.entries()) p.resolve(sent[i] as BusMessage);
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    lanes.delete(channel);
  };

  const driver: BusDriver = {
    kind: 'amqp',
    capabilities: { history: true, shared: true },

    append(channel, input) {
      return new Promise<BusMessage>((resolve, reject) => {
        const queue = lanes.get(channel);
        if (queue) queue.push({ input, resolve, reject });
        else {
          const fresh = [{ input, resolve, reject }];
          lanes.set(channel, fresh);
          void pump(channel, fresh);
        }
      });
    },

    async listen(channel) {
      const { routingKey } = logNames(ns, channel);
      delivery.hold(channel);
      routes.set(routingKey, channel);
      try {
        const start = await call('subscribe', (deadline) =>
          withLog(channel, deadline, async (names) => {
            const queue = await subscriberQueue();
            await (await link.channel('subscriber')).bindQueue(queue, exchange, routingKey);
            return peekToken(link, names.token, deadline);
          }),
        );
        delivery.start(channel, start);
      } catch (err) {
        delivery.drop(channel);
        routes.delete(routingKey);
        throw err;
      }
    },

    async unlisten(channel) {
      const { routingKey } = logNames(ns, channel);
      delivery.drop(channel);
      routes.delete(routingKey);
      await call('unsubscribe', async () => {
        const queue = await subscriber?.queue;
        if (queue) await (await link.channel('subscriber')).unbindQueue(queue, exchange, routingKey);
      });
    },

    range: (channel, after, limit, deadline, epoch) =>
      readLog(channel, after, limit, deadline - timeoutMs * 0.1, epoch),

    head: (channel, deadline) =>
      withLog(channel, deadline - timeoutMs * 0.1, async (names) => {
        const head = await peekToken(link, names.token, deadline - timeoutMs * 0.1);
        return { epoch: head.epoch, offset: head.offset };
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
