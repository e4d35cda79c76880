import { createHash, randomUUID } from 'node:crypto';
import type { Channel, Message } from 'amqplib';
import type { AmqpLink } from './amqp-link.js';
import type { BusMessage } from './contract.js';

/**
 * A channel's log on RabbitMQ, three objects per channel:
 * - a token queue holding exactly one message {epoch, offset}: whoever holds it unacked
 *   may publish, and a crashed holder's token goes back to the queue by itself;
 * - a stream queue with the history, one record per offset (stream offset = offset − 1);
 * - a routing key on the namespace's topic exchange for live fan-out.
 * A publish takes the token and, in one AMQP transaction, publishes to the exchange and the
 * stream, puts back the advanced token and acks the old one: offsets are gap-free, and the
 * next holder's messages are committed after this one's everywhere.
 */

export interface Token {
  epoch: string;
  offset: number;
}

export interface LogNames {
  token: string;
  stream: string;
  routingKey: string;
  lock: string;
}

export function logNames(namespace: string, channel: string): LogNames {
  return logNamesForKey(namespace, routingKey(channel));
}

export function logNamesForKey(namespace: string, key: string): LogNames {
  const base = `shoal.${namespace}`;
  return { token: `${base}.t.${key}`, stream: `${base}.h.${key}`, routingKey: key, lock: `${base}.lock.${key}` };
}

/**
 * One topic-exchange word per channel: `.`, `*` and `#` would split or widen a binding, so
 * they are escaped too. Long names are hashed to stay under the 255-byte name limit
 * (`#` never occurs in an escaped name, so hashed and plain keys cannot collide).
 */
export function routingKey(channel: string): string {
  const escaped = encodeURIComponent(channel).replace(
    /[.*!'()~]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return escaped.length <= 180 ? escaped : `#${createHash('sha256').update(channel).digest('base64url')}`;
}

export const encode = (m: BusMessage): Buffer =>
  Buffer.from(JSON.stringify([m.epoch, m.offset, m.event, m.data, m.publishedAt]));

export function decode(channel: string, body: Buffer): BusMessage {
  const [epoch, offset, event, data, publishedAt] = JSON.parse(body.toString('utf8')) as [
    string,
    number,
    string,
    string,
    number,
  ];
  return { channel, epoch, offset, event, data, publishedAt };
}

const parseToken = (m: Message): Token => {
  const t = JSON.parse(m.content.toString('utf8')) as { e: string; o: number };
  return { epoch: t.e, offset: t.o };
};
const tokenBody = (t: Token) => Buffer.from(JSON.stringify({ e: t.epoch, o: t.offset }));

/** Takes the token off its queue (unacked), waiting for its holder to put it back; resolves null at the deadline. */
export async function takeToken(ch: Channel, queue: string, deadline: number): Promise<Message | null> {
  const now = await ch.get(queue, { noAck: false });
  if (now) return now;
  return new Promise<Message | null>((resolve, reject) => {
    let settled = false;
    let tag: string | undefined;
    const timer = setTimeout(() => finish(null), Math.max(0, deadline - Date.now()));
    const finish = (m: Message | null, err?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (tag) void ch.cancel(tag).catch(() => undefined);
      if (err) reject(err);
      else resolve(m);
    };
    const gone = () => Object.assign(new Error(`${queue} was deleted`), { code: 404 });
    ch.consume(queue, (m) => (m ? finish(m) : finish(null, gone())), { noAck: false }).then(
      (ok) => {
        tag = ok.consumerTag;
        if (settled) void ch.cancel(tag).catch(() => undefined);
      },
      (err: unknown) => finish(null, err),
    );
  });
}

/** The current head, read by taking the token and handing it straight back. */
export async function peekToken(link: AmqpLink, queue: string, deadline: number): Promise<Token> {
  return link.temp(async (ch) => {
    await ch.prefetch(1);
    const m = await takeToken(ch, queue, deadline);
    if (!m) throw new Error(`the head of ${queue} stayed taken until the timeout`);
    const token = parseToken(m);
    ch.nack(m, false, true);
    return token;
  });
}

/** Appends messages after the token's offset; `build` gets each offset. One transaction. */
export async function appendBatch(
  link: AmqpLink,
  names: LogNames,
  exchange: string,
  count: number,
  build: (epoch: string, offset: number, i: number) => BusMessage,
  deadline: number,
): Promise<BusMessage[]> {
  const ch = await link.takeTx();
  try {
    const held = await takeToken(ch, names.token, deadline);
    if (!held) throw new Error(`the head of ${names.token} stayed taken until the timeout`);
    const token = parseToken(held);
    const out: BusMessage[] = [];
    for (let i = 0; i < count; i++) {
      const m = build(token.epoch, token.offset + i + 1, i);
      const body = encode(m);
      ch.publish(exchange, names.routingKey, body, { contentType: 'application/json' });
      ch.sendToQueue(names.stream, body, { contentType: 'application/json' });
      out.push(m);
    }
    ch.sendToQueue(names.token, tokenBody({ epoch: token.epoch, offset: token.offset + count }), { persistent: true });
    ch.ack(held);
    await link.commit(ch);
    link.giveTx(ch);
    return out;
  } catch (err) {
    link.dropTx(ch);
    throw err;
  }
}

async function exists(link: AmqpLink, names: LogNames): Promise<boolean> {
  return link
    .temp(async (ch) => {
      await ch.checkQueue(names.token);
      await ch.checkQueue(names.stream);
      return true;
    })
    .catch((err: unknown) => {
      if ((err as { code?: number }).code === 404) return false;
      throw err;
    });
}

/**
 * Makes the channel's log if it is missing or broken (token or stream gone: new epoch).
 * The stream is declared last, so a crash half-way leaves "missing", never "half there".
 */
export async function ensureLog(
  link: AmqpLink,
  names: LogNames,
  registry: string,
  retention: { maxAgeS: number },
  deadline: number,
): Promise<void> {
  if (await exists(link, names)) return;
  await link.withLock(names.lock, deadline, async () => {
    if (await exists(link, names)) return;
    await link.tempConfirm(async (ch) => {
      await ch.deleteQueue(names.stream);
      await ch.deleteQueue(names.token);
      await ch.assertQueue(names.token, { durable: true });
      ch.sendToQueue(names.token, tokenBody({ epoch: randomUUID(), offset: 0 }), { persistent: true });
      // Lets dropAmqpNamespace() find every channel's queues.
      ch.sendToQueue(registry, Buffer.from(names.routingKey), { persistent: true });
      await ch.waitForConfirms();
      await ch.assertQueue(names.stream, {
        durable: true,
        arguments: {
          'x-queue-type': 'stream',
          'x-max-age': `${retention.maxAgeS}s`,
          // Age retention drops whole segments: small ones make it follow historyTtlMs closely.
          'x-stream-max-segment-size-bytes': 8 * 1024 * 1024,
        },
      });
    });
  });
}

/**
 * Stream records with offsets after+1 … upTo. Stops at the first record past a gap
 * (trimmed by age retention): the caller sees that the first offset is not after+1.
 */
export async function readStream(
  link: AmqpLink,
  names: LogNames,
  after: number,
  upTo: number,
  channel: string,
  deadline: number,
): Promise<BusMessage[]> {
  return link.temp(
    (ch) =>
      new Promise<BusMessage[]>((resolve, reject) => {
        const out: BusMessage[] = [];
        let settled = false;
        const finish = (err?: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (err) reject(err);
          else resolve(out);
        };
        const timer = setTimeout(
          () => finish(new Error(`history of ${channel} ended before offset ${upTo}`)),
          Math.max(0, deadline - Date.now()),
        );
        const onRecord = (m: Message | null) => {
          if (!m) return finish(new Error(`${names.stream} was deleted`));
          if (settled) return;
          ch.ack(m);
          const msg = decode(channel, m.content);
          if (msg.offset <= after) return; // before the wanted offset (or an earlier incarnation)
          out.push(msg);
          if (msg.offset >= upTo || msg.offset !== after + out.length) finish();
        };
        void ch
          .prefetch(Math.min(1000, Math.max(1, upTo - after)))
          .then(() =>
            ch.consume(names.stream, onRecord, { noAck: false, arguments: { 'x-stream-offset': Math.max(0, after) } }),
          )
          .then(() => undefined, finish);
      }),
  );
}
