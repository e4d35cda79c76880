import { createHash, randomUUID } from 'node:crypto';
import type { Channel, Message } from 'amqplib';
import type { AmqpLink } from './amqp-link.js';
import { DEFAULT_PARTITIONS, partitionKey, partitionOf } from './amqp-partition.js';
import type { BusMessage } from './contract.js';

/**
 * A partition's log on RabbitMQ (a namespace has a fixed number of them; a channel lives in
 * the one its name hashes to, amqp-partition.ts), two queues per partition:
 * - a token queue holding exactly one message (Token): whoever holds it unacked may append,
 *   and a crashed holder's token goes back to the queue by itself;
 * - a stream queue with the records of all its channels, each carrying its channel's
 *   offset, plus now and then a checkpoint with every channel's newest offset.
 * Live fan-out goes through one routing key per channel on the namespace's topic exchange.
 * An append takes the token and, in one AMQP transaction, publishes to the exchange and the
 * stream, puts back the advanced token and acks the old one: each channel's offsets are
 * gap-free, and the next holder's records are committed after this one's everywhere.
 */

export interface Token {
  /** The partition's epoch; every channel in it shares it. */
  epoch: string;
  /** Records in the stream: the next record's stream offset. */
  seq: number;
  /** Stream offset where this epoch began (records before it belong to an earlier one). */
  begin: number;
  /** Stream offset of the newest checkpoint, -1 when this epoch has none yet. */
  ckpt: number;
  /** When that checkpoint (or the epoch) was written, ms. */
  ckptAt: number;
  /** [channel, offset] of the newest records (0 for a checkpoint), ending at seq − 1. */
  recent: Array<[string, number] | 0>;
}

export interface LogNames {
  token: string;
  stream: string;
  routingKey: string;
  lock: string;
}

/** The queues of the partition that holds `channel`. */
export function logNames(namespace: string, channel: string, partitions = DEFAULT_PARTITIONS): LogNames {
  return logNamesForKey(namespace, partitionKey(partitions, partitionOf(channel, partitions)));
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
  Buffer.from(JSON.stringify([m.epoch, m.offset, m.event, m.data, m.publishedAt, m.channel]));

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

export const parseToken = (m: Message): Token => {
  const t = JSON.parse(m.content.toString('utf8')) as {
    e: string;
    s: number;
    b: number;
    c: number;
    ca: number;
    r: Token['recent'];
  };
  return { epoch: t.e, seq: t.s, begin: t.b, ckpt: t.c, ckptAt: t.ca, recent: t.r };
};
export const tokenBody = (t: Token) =>
  Buffer.from(JSON.stringify({ e: t.epoch, s: t.seq, b: t.begin, c: t.ckpt, ca: t.ckptAt, r: t.recent }));

/** A new epoch starting at stream offset `seq`: every channel of the partition starts again at offset 1. */
export const freshToken = (seq: number): Token => ({
  epoch: randomUUID(),
  seq,
  begin: seq,
  ckpt: -1,
  ckptAt: Date.now(),
  recent: [],
});

/**
 * basic.get. When the broker refuses it (no such queue), amqplib rejects with the raw close
 * frame, not an Error: it is turned into one that says what the broker said, with the reply
 * code as `code`, as amqplib's other calls fail.
 */
export async function getOne(ch: Channel, queue: string, noAck: boolean): Promise<Message | false> {
  try {
    return await ch.get(queue, { noAck });
  } catch (err) {
    const frame = (err as { fields?: { replyCode?: unknown; replyText?: unknown } } | null)?.fields;
    if (err instanceof Error || typeof frame?.replyCode !== 'number') throw err;
    throw Object.assign(new Error(`Operation failed: BasicGet; ${frame.replyCode} (${String(frame.replyText)})`), {
      code: frame.replyCode,
    });
  }
}

/** Takes the token off its queue (unacked), waiting for its holder to put it back; resolves null at the deadline. */
export async function takeToken(ch: Channel, queue: string, deadline: number): Promise<Message | null> {
  const now = await getOne(ch, queue, false);
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

/**
 * 'missing' when the token or the stream queue is gone; 'doubled' when the token queue holds more
 * than one token, as a log made twice at once by one client of an earlier version left it: every
 * token holder then gives out the same offsets, so the log is only fit to be made again.
 */
async function logState(link: AmqpLink, names: LogNames): Promise<'ok' | 'missing' | 'doubled'> {
  return link
    .temp(async (ch) => {
      const token = await ch.checkQueue(names.token);
      await ch.checkQueue(names.stream);
      // Ready tokens only: one held by a client is not counted, so 2+ here are 2+ tokens.
      return token.messageCount > 1 ? ('doubled' as const) : ('ok' as const);
    })
    .catch((err: unknown) => {
      if ((err as { code?: number }).code === 404) return 'missing' as const;
      throw err;
    });
}

/**
 * Makes the partition's log if it is missing or broken (token or stream gone, or more than one
 * token): a new epoch, whose clients reload. The stream is declared last, so a crash half-way
 * leaves "missing", never "half there".
 */
export async function ensureLog(
  link: AmqpLink,
  names: LogNames,
  registry: string,
  retention: { maxAgeS: number },
  deadline: number,
): Promise<void> {
  if ((await logState(link, names)) === 'ok') return;
  await link.withLock(names.lock, deadline, async () => {
    if ((await logState(link, names)) === 'ok') return;
    await link.tempConfirm(async (ch) => {
      // Deleting the token queue also drops a token held meanwhile: its holder's ack or requeue finds no queue.
      await ch.deleteQueue(names.stream);
      await ch.deleteQueue(names.token);
      await ch.assertQueue(names.token, { durable: true });
      ch.sendToQueue(names.token, tokenBody(freshToken(0)), { persistent: true });
      // Lets dropAmqpNamespace() find every partition's queues.
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
 * Hands `fn` every record of `stream` from stream offset `from` (inclusive) until `until`
 * (exclusive) or until `fn` returns true. Resolves false when the first record found lies
 * past `from` (what was before it is gone by age retention); `fn` still gets the rest.
 */
export async function scanStream(
  link: AmqpLink,
  stream: string,
  from: number,
  until: number,
  fn: (at: number, body: Buffer) => boolean | undefined,
  deadline: number,
): Promise<boolean> {
  if (from >= until) return true;
  return link.temp(
    (ch) =>
      new Promise<boolean>((resolve, reject) => {
        let settled = false;
        let whole = true;
        let first = true;
        const finish = (err?: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (err) reject(err);
          else resolve(whole);
        };
        const timer = setTimeout(
          () => finish(new Error(`${stream} ended before stream offset ${until - 1}`)),
          Math.max(0, deadline - Date.now()),
        );
        const onRecord = (m: Message | null) => {
          if (!m) return finish(new Error(`${stream} was deleted`));
          if (settled) return;
          ch.ack(m);
          const at = Number(m.properties.headers?.['x-stream-offset']);
          if (at < from) return; // the chunk a read starts in may begin earlier
          if (first && at > from) whole = false;
          first = false;
          if (fn(at, m.content) === true || at >= until - 1) finish();
        };
        void ch
          .prefetch(Math.min(1000, Math.max(1, until - from)))
          .then(() => ch.consume(stream, onRecord, { noAck: false, arguments: { 'x-stream-offset': from } }))
          .then(() => undefined, finish);
      }),
  );
}
