import type { ConsumerConfig, ConsumerMessages, JsMsg } from 'nats';
import { sleep } from '../core/timing.js';
import type { BusMessage } from './contract.js';
import { decodeEntry, type Link, type Tail } from './nats-log.js';

/**
 * JetStream consumers that survive a dead cluster peer. In a clustered stream an ephemeral consumer
 * is placed on one of the stream's peers, chosen at random, and the server keeps choosing a peer
 * that is down: measured on a 3-server cluster with one server killed, a quarter to a third of
 * creations never answer, for as long as the server stays down. nats.js's ordered consumer waits
 * out each such creation for the whole API timeout and then backs off for seconds. Here each
 * creation gets a short attempt and is retried at once (a new random placement), so a channel's
 * reads and subscriptions succeed while a peer is down.
 */

const NANOS_PER_MS = 1_000_000;
/** A consumer whose client went away (a timed-out attempt answered late, a crashed node) is removed after this. */
const INACTIVE_MS = 30_000;

export interface ConsumerSettings {
  stream: string;
  subject: string;
}

/** An ephemeral, unacknowledged consumer of one subject from `startSeq`, created within `until`. */
export async function createConsumer(l: Link, s: ConsumerSettings, startSeq: number, until: number): Promise<string> {
  const config: Partial<ConsumerConfig> = {
    filter_subject: s.subject,
    deliver_policy: 'by_start_sequence' as ConsumerConfig['deliver_policy'],
    opt_start_seq: Math.max(1, startSeq),
    ack_policy: 'none' as ConsumerConfig['ack_policy'],
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: INACTIVE_MS * NANOS_PER_MS,
  };
  let last: unknown;
  for (let attempt = 0; attempt === 0 || Date.now() < until; attempt++) {
    try {
      const info = await l.jsmQuick.consumers.add(s.stream, config);
      return info.name;
    } catch (err) {
      last = err;
      if (!isTimeout(err)) throw err;
    }
  }
  throw last;
}

function isTimeout(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'TIMEOUT' || code === '408' || /timeout/i.test(String(err));
}

/**
 * Live delivery of one subject, in stream order, each entry once: a consumer from the next
 * sequence, made again (from the next sequence) when its peer dies, it is deleted, or a delivery
 * sequence shows a gap. What nats.js's ordered consumer does, with creation that a dead peer cannot stall.
 */
export class LiveConsumer {
  #generation = 0;
  #nextSeq: number;
  #deliverSeq = 0;
  #messages: ConsumerMessages | undefined;
  #closed = false;
  #restarting = false;

  constructor(
    private readonly link: () => Promise<Link>,
    private readonly settings: ConsumerSettings,
    startSeq: number,
    private readonly onMessage: (m: JsMsg) => void,
  ) {
    this.#nextSeq = startSeq;
  }

  /** Starts delivery; rejects if no consumer could be made by `until`. */
  async start(until: number): Promise<void> {
    await this.#open(await this.link(), until);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#generation++;
    const messages = this.#messages;
    this.#messages = undefined;
    await messages?.close().catch(() => undefined);
  }

  async #open(l: Link, until: number): Promise<void> {
    const name = await createConsumer(l, this.settings, this.#nextSeq, until);
    const generation = ++this.#generation;
    if (this.#closed) {
      await l.jsm.consumers.delete(this.settings.stream, name).catch(() => false);
      return;
    }
    this.#deliverSeq = 0;
    const consumer = await l.js.consumers.get(this.settings.stream, name);
    // expires 5 s → idle heartbeats every 2.5 s: a consumer lost with its peer is noticed in seconds.
    const messages = await consumer.consume({
      expires: 5000,
      callback: (m) => {
        if (generation !== this.#generation) return;
        if (m.info.deliverySequence !== this.#deliverSeq + 1) return this.#restart(generation);
        this.#deliverSeq = m.info.deliverySequence;
        this.#nextSeq = m.seq + 1;
        this.onMessage(m);
      },
    });
    const previous = this.#messages;
    this.#messages = messages;
    // Not awaited: closing a consumer on a dead peer may not answer.
    void previous?.close().catch(() => undefined);
    void this.#watch(messages, generation);
  }

  async #watch(messages: ConsumerMessages, generation: number): Promise<void> {
    for await (const s of await messages.status()) {
      if (generation !== this.#generation) return;
      const lost =
        (s.type === 'heartbeats_missed' && Number(s.data) >= 2) ||
        s.type === 'consumer_not_found' ||
        s.type === 'consumer_deleted';
      if (lost) return this.#restart(generation);
    }
  }

  /** Makes the consumer again from the next sequence, retrying until it works or close(). */
  #restart(generation: number): void {
    if (this.#restarting || generation !== this.#generation || this.#closed) return;
    this.#restarting = true;
    this.#generation++; // the old consumer's deliveries and status no longer count
    void (async () => {
      try {
        for (let attempt = 0; !this.#closed; attempt++) {
          try {
            await this.#open(await this.link(), Date.now() + 2000);
            return;
          } catch {
            await sleep(Math.min(1000, 100 * 2 ** attempt));
          }
        }
      } finally {
        this.#restarting = false;
      }
    })();
  }
}

/**
 * Live delivery on a stream made without republish (by an older version; a stream cannot be
 * changed to republish): one LiveConsumer per subscribed channel, from the sequence after its head.
 */
export function consumerPerChannel(o: {
  call: <T>(what: string, op: (deadline: number) => Promise<T>) => Promise<T>;
  withLink: <T>(op: (l: Link) => Promise<T>) => Promise<T>;
  fetchTail: (l: Link, channel: string) => Promise<Tail>;
  subjectOf: (channel: string) => string;
  stream: string;
  learn: (channel: string, tail: Tail) => void;
  deliver: (message: BusMessage) => void;
}) {
  const subscriptions = new Map<string, Promise<LiveConsumer>>();
  const link = () => o.withLink(async (l) => l);
  const onLive = (channel: string, m: JsMsg) => {
    const [epoch, offset, event, data, publishedAt] = decodeEntry(m);
    o.learn(channel, { epoch, offset, seq: m.seq });
    if (offset === 0 || !subscriptions.has(channel)) return; // a marker, or unsubscribed meanwhile
    o.deliver({ channel, epoch, offset, event, data, publishedAt });
  };

  return {
    async listen(channel: string): Promise<void> {
      const settings = { stream: o.stream, subject: o.subjectOf(channel) };
      const started: Promise<LiveConsumer> = o.call('subscribe', (deadline) =>
        o.withLink(async (l) => {
          const tail = await o.fetchTail(l, channel);
          const consumer = new LiveConsumer(link, settings, tail.seq + 1, (m) => {
            if (subscriptions.get(channel) === started) onLive(channel, m);
          });
          await consumer.start(deadline);
          // This attempt timed out or was replaced meanwhile: a consumer left running would
          // deliver every message again beside the current one.
          if (subscriptions.get(channel) !== started) {
            await consumer.close();
            throw new Error('subscribe was abandoned');
          }
          return consumer;
        }),
      );
      subscriptions.set(channel, started);
      try {
        await started;
      } catch (err) {
        if (subscriptions.get(channel) === started) subscriptions.delete(channel);
        throw err;
      }
    },

    async unlisten(channel: string): Promise<void> {
      const sub = subscriptions.get(channel);
      if (!sub) return;
      subscriptions.delete(channel);
      const consumer = await sub.catch(() => undefined);
      if (consumer) await o.call('unsubscribe', () => consumer.close());
    },

    async close(): Promise<void> {
      const subs = [...subscriptions.values()];
      subscriptions.clear();
      for (const sub of subs) void (await sub.catch(() => undefined))?.close();
    },
  };
}
