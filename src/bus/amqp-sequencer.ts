import type { Channel } from 'amqplib';
import type { AmqpLink } from './amqp-link.js';
import {
  encode,
  freshToken,
  type LogNames,
  parseToken,
  routingKey,
  scanStream,
  type Token,
  takeToken,
  tokenBody,
} from './amqp-log.js';
import type { Checkpoint, PartitionView } from './amqp-view.js';
import type { BusMessage, PublishInput } from './contract.js';

/**
 * Offsets per channel inside a partition, with no server-side code: the token holder
 * brings its view of the partition up to the token (from the token's list of recent
 * records, else by reading the stream from the newest checkpoint), then numbers its
 * records from the view and commits them with the advanced token in one transaction.
 */

/** Records the token lists, so a view a little behind catches up without reading the stream. */
const RECENT = 256;
/** A checkpoint every so many records bounds what a client new to the partition reads. */
const CHECKPOINT_RECORDS = 4096;

export interface PartitionLog {
  link: AmqpLink;
  names: LogNames;
  view: PartitionView;
  exchange: string;
  /** A checkpoint at least this often keeps the newest one inside age retention. */
  checkpointEveryMs: number;
}

/** Brings the view up to the token; 'lost' when the records it needs were dropped by retention. */
async function catchUp(p: PartitionLog, token: Token, deadline: number): Promise<'ok' | 'lost'> {
  const { view } = p;
  if (view.epoch !== token.epoch || view.upTo < token.begin || view.upTo > token.seq) view.invalidate();
  const recentFrom = token.seq - token.recent.length;
  if (view.upTo >= 0 && view.upTo >= recentFrom) {
    for (let at = view.upTo; at < token.seq; at++) {
      const entry = token.recent[at - recentFrom];
      if (entry) view.record(entry[0], entry[1], at);
    }
    view.upTo = token.seq;
    return 'ok';
  }
  const fresh = view.upTo < 0 || view.upTo < token.ckpt;
  const from = fresh ? Math.max(token.ckpt, token.begin) : view.upTo;
  if (fresh) view.reset(token.epoch, from);
  const whole = await scanStream(
    p.link,
    p.names.stream,
    from,
    token.seq,
    (at, body) => {
      const record = JSON.parse(body.toString('utf8')) as unknown;
      if (Array.isArray(record)) {
        const [epoch, offset, , , , channel] = record as [string, number, string, string, number, string];
        if (epoch === token.epoch) view.record(channel, offset, at);
      } else if (fresh && at === token.ckpt && (record as Checkpoint).k === token.epoch) {
        view.load(record as Checkpoint);
      }
      return undefined;
    },
    deadline,
  );
  if (!whole) {
    view.invalidate();
    return 'lost';
  }
  view.upTo = token.seq;
  return 'ok';
}

/** Appends `items` (none: only repairs a lost partition) holding the token; one transaction. */
export async function appendBatch(
  p: PartitionLog,
  items: Array<{ channel: string; input: PublishInput }>,
  deadline: number,
): Promise<BusMessage[]> {
  const { link, names, view } = p;
  const ch = await link.takeTx();
  try {
    const held = await takeToken(ch, names.token, deadline);
    if (!held) throw new Error(`the head of ${names.token} stayed taken until the timeout`);
    let token = parseToken(held);
    if ((await catchUp(p, token, deadline)) === 'lost') {
      // What the offsets were is gone with the stream's old records: the partition starts a new epoch.
      token = freshToken(token.seq);
      view.reset(token.epoch, token.seq);
    }
    const publishedAt = Date.now();
    const recent = token.recent.slice();
    let seq = token.seq;
    const out: BusMessage[] = [];
    for (const { channel, input } of items) {
      const m = { channel, epoch: token.epoch, offset: view.head(channel) + 1, ...input, publishedAt };
      const body = encode(m);
      ch.publish(p.exchange, routingKey(channel), body, { contentType: 'application/json' });
      ch.sendToQueue(names.stream, body, { contentType: 'application/json' });
      view.record(channel, m.offset, seq++);
      recent.push([channel, m.offset]);
      out.push(m);
    }
    let { ckpt, ckptAt } = token;
    if (seq - Math.max(ckpt, token.begin) >= CHECKPOINT_RECORDS || publishedAt - ckptAt >= p.checkpointEveryMs) {
      ch.sendToQueue(names.stream, Buffer.from(JSON.stringify(view.checkpoint())), { contentType: 'application/json' });
      recent.push(0);
      ckpt = seq++;
      ckptAt = publishedAt;
    }
    view.upTo = seq;
    const next = { ...token, seq, ckpt, ckptAt, recent: recent.slice(-RECENT) };
    ch.sendToQueue(names.token, tokenBody(next), { persistent: true });
    ch.ack(held);
    await link.commit(ch);
    link.giveTx(ch);
    return out;
  } catch (err) {
    view.invalidate();
    link.dropTx(ch);
    throw err;
  }
}

/**
 * `look` at the view caught up to the partition's token, while holding the token (so no
 * append of this client is half-way), then hand the token straight back.
 */
export async function peekPartition<T>(
  p: PartitionLog,
  deadline: number,
  look: (token: Token, view: PartitionView) => T,
): Promise<T> {
  const seen = await p.link.temp(async (ch: Channel) => {
    await ch.prefetch(1);
    const m = await takeToken(ch, p.names.token, deadline);
    if (!m) throw new Error(`the head of ${p.names.token} stayed taken until the timeout`);
    try {
      const token = parseToken(m);
      return (await catchUp(p, token, deadline)) === 'ok' ? { value: look(token, p.view) } : undefined;
    } finally {
      ch.nack(m, false, true);
    }
  });
  if (seen) return seen.value;
  await appendBatch(p, [], deadline);
  return peekPartition(p, deadline, look);
}
