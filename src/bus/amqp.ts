import { withDeadline } from '../core/deadline.js';
import { BusUnavailableError, ConfigError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';
import { settleWithin } from '../core/timing.js';
import { AmqpLink, type Amqplib } from './amqp-link.js';
import {
  appendBatch,
  decode,
  ensureLog,
  type LogNames,
  logNames,
  logNamesForKey,
  peekToken,
  readStream,
} from './amqp-log.js';
import type { Bus, BusMessage, BusOptions, MessageHandler, PublishInput, ReadResult } from './contract.js';
import { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL_MS, isComplete, positiveInt } from './history.js';
import { type Backlog, OrderedDelivery, warnCatchUp } from './ordered-delivery.js';

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
  const ns = options.namespace ?? 'shoal';
  const historySize = positiveInt(options.historySize, DEFAULT_HISTORY_SIZE);
  const ttlMs = positiveInt(options.historyTtlMs, DEFAULT_HISTORY_TTL_MS);
  const timeoutMs = positiveInt(options.timeoutMs, 2000);
  if (!/^[A-Za-z0-9_.:-]+$/.test(ns)) {
    throw new ConfigError('amqp bus: namespace may hold only letters, digits and _ . : -');
  }
  const { url, label } = connectionUrl(options.url);
  const lib = await importOptional<Amqplib>('amqplib', 'The AMQP (RabbitMQ) message bus');
  const exchange = `shoal.${ns}`;
  const registry = `shoal.${ns}.registry`;
  const retention = { maxAgeS: Math.max(1, Math.ceil(ttlMs / 1000)) };

  let closed = false;
  let handler: MessageHandler | undefined;
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

  /** After a reconnect the old client queue is gone with its connection: bind a new one, then replay the gap. */
  const rebind = (attempt: number) => {
    subscriberQueue().then(
      () => {
        for (const channel of delivery.channels) delivery.resync(channel);
      },
      (err: unknown) => {
        link.lastError = err;
        if (!closed && attempt < 30) setTimeout(() => rebind(attempt + 1), 1000).unref();
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

  const call = async <T>(what: string, op: (deadline: number) => Promise<T>): Promise<T> => {
    if (closed) throw new BusUnavailableError(label, 'this bus was closed; open a new one with createBus()');
    try {
      // Inner waits end a little earlier, so their own message wins the race.
      return await withDeadline(() => op(Date.now() + timeoutMs * 0.9), timeoutMs);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      const lastError = link.lastError instanceof Error ? link.lastError.message : undefined;
      const last = lastError && lastError !== detail ? ` (last connection error: ${lastError})` : '';
      throw new BusUnavailableError(
        label,
        `${what} failed: ${detail}${last}. Check that RabbitMQ is running and reachable, or raise timeoutMs.`,
        { cause: err },
      );
    }
  };

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
    withLog(channel, deadline, async (names) => {
      const head = await peekToken(link, names.token, deadline);
      const result = (messages: BusMessage[], complete: boolean) => ({
        epoch: head.epoch,
        last: head.offset,
        messages,
        complete,
      });
      if (epoch !== undefined && epoch !== head.epoch) return result([], false);
      if (after >= head.offset || after < head.offset - historySize) {
        return result([], isComplete(after, head.offset, historySize, undefined));
      }
      const records = await readStream(link, names, after, Math.min(head.offset, after + limit), channel, deadline);
      const cutoff = Date.now() - ttlMs;
      const messages = records.filter((m) => m.epoch === head.epoch && m.publishedAt >= cutoff);
      const gapless = messages.every((m, i) => m.offset === after + 1 + i);
      const complete = gapless && isComplete(after, head.offset, historySize, messages[0]?.offset);
      return result(complete ? messages : [], complete);
    });
  const position = (channel: string) =>
    call('position', (deadline) =>
      withLog(channel, deadline, async (names) => {
        const head = await peekToken(link, names.token, deadline);
        return { epoch: head.epoch, offset: head.offset };
      }),
    );
  const backlog = (channel: string, after: number): Promise<Backlog> =>
    call('catch-up read', (deadline) => readLog(channel, after, 500, deadline));

  const delivery = new OrderedDelivery(backlog, () => handler, warnCatchUp('amqp'));

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

  return {
    kind: 'amqp',
    capabilities: { history: true, shared: true },

    publish(channel, input) {
      if (closed) {
        return Promise.reject(new BusUnavailableError(label, 'this bus was closed; open a new one with createBus()'));
      }
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

    async subscribe(channel) {
      if (delivery.has(channel)) return;
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

    async unsubscribe(channel) {
      if (!delivery.has(channel)) return;
      const { routingKey } = logNames(ns, channel);
      delivery.drop(channel);
      routes.delete(routingKey);
      await call('unsubscribe', async () => {
        const queue = await subscriber?.queue;
        if (queue) await (await link.channel('subscriber')).unbindQueue(queue, exchange, routingKey);
      });
    },

    onMessage(h) {
      handler = h;
    },

    async read(channel, after, readOptions = {}): Promise<ReadResult> {
      const limit = positiveInt(readOptions.limit, historySize);
      const r = await call('read', (deadline) => readLog(channel, after, limit, deadline, readOptions.epoch));
      return { epoch: r.epoch, messages: r.messages, complete: r.complete };
    },

    position,

    async ping() {
      await call('ping', async () => {
        await (await link.channel('control')).checkExchange(exchange);
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const channel of delivery.channels) delivery.drop(channel);
      routes.clear();
      await settleWithin(link.close(), timeoutMs);
    },
  } satisfies Bus;
}

/**
 * Deletes everything a namespace made on the broker: every channel's token and stream
 * queue, the registry and the exchange. For tests and decommissioning; live clients of
 * the namespace lose their history (their next publish starts a new epoch).
 */
export async function dropAmqpNamespace(url: string, namespace: string): Promise<void> {
  const lib = await importOptional<Amqplib>('amqplib', 'The AMQP (RabbitMQ) message bus');
  const conn = await lib.connect(url);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    const registry = `shoal.${namespace}.registry`;
    const keys = new Set<string>();
    await ch.assertQueue(registry, { durable: true });
    for (let i = 0; i < 1_000_000; i++) {
      const m = await ch.get(registry, { noAck: true });
      if (!m) break;
      keys.add(m.content.toString('utf8'));
    }
    for (const key of keys) {
      const names = logNamesForKey(namespace, key);
      await ch.deleteQueue(names.token);
      await ch.deleteQueue(names.stream);
    }
    await ch.deleteQueue(registry);
    await ch.deleteExchange(`shoal.${namespace}`);
  } finally {
    await conn.close();
  }
}

function connectionUrl(raw: string): { url: string; label: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch (err) {
    throw new ConfigError('amqp bus: url must look like amqp://user:pass@host:5672/vhost', { cause: err });
  }
  if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') {
    throw new ConfigError(`amqp bus: "${u.protocol}" is not an AMQP URL scheme; write amqp://user:pass@host:5672`);
  }
  // Heartbeats notice a dead peer behind a silent network in ~20 s instead of TCP's minutes.
  if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', '10');
  const shown = new URL(u);
  if (shown.password) shown.password = '***';
  return { url: u.toString(), label: `amqp (${shown.host})` };
}
