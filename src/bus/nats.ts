import { createHash, randomUUID } from 'node:crypto';
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, NatsConnection, StreamConfig } from 'nats';
import { withDeadline } from '../core/deadline.js';
import { BusUnavailableError, ConfigError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';
import { settleWithin, sleep } from '../core/timing.js';
import type { Bus, BusMessage, BusOptions, MessageHandler, Position, ReadResult } from './contract.js';
import { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL_MS, deliver, isComplete, positiveInt } from './history.js';

export interface NatsBusOptions extends BusOptions {
  /**
   * `nats://[user:pass@]host:4222`, several comma-separated for a cluster (`nats://a:4222,b:4222`);
   * `?replicas=3` sets the stream's replicas, `?noRandomize=1` tries the servers in the order given.
   */
  url: string;
  /** JetStream replicas of the namespace's stream when this client creates it. Default 1. */
  replicas?: number;
}

/** The newest entry of a channel's log: the marker (offset 0) or its last message. */
interface Tail {
  epoch: string;
  offset: number;
  seq: number;
}

const WRONG_LAST_SEQUENCE = 10071;
const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;
const NO_MESSAGE = 10037;
const MAX_CAS_ATTEMPTS = 200;

/**
 * NATS JetStream bus. One stream per namespace (subjects `shoal.<ns>.<channel>`, history
 * capped per subject and by age). A channel's log starts with a marker message carrying
 * a random epoch (offset 0); every message carries epoch and offset. Offsets are
 * assigned by compare-and-set: a publish names the stream sequence of the channel's
 * newest entry (Nats-Expected-Last-Subject-Sequence) and the server rejects it if another
 * publisher got there first, so offsets are gap-free and in stream order across any number
 * of publishers. When the channel's entries are all gone (deleted stream, expiry) the next
 * marker starts a new epoch. Live delivery: an ordered consumer per subscribed channel,
 * which resumes by itself from the last stream sequence after a reconnect.
 */
export async function natsBus(options: NatsBusOptions): Promise<Bus> {
  const ns = options.namespace ?? 'shoal';
  const historySize = positiveInt(options.historySize, DEFAULT_HISTORY_SIZE);
  const ttlMs = positiveInt(options.historyTtlMs, DEFAULT_HISTORY_TTL_MS);
  const timeoutMs = positiveInt(options.timeoutMs, 2000);
  const { servers, user, pass, tls, replicas, noRandomize, label } = parseUrl(options.url);
  const stream = streamName(ns);
  const subjectOf = (channel: string) => `shoal.${token(ns)}.${token(channel)}`;
  const nats = await importOptional<typeof import('nats')>('nats', 'The NATS message bus');
  const { nanos } = nats;

  let closed = false;
  let lastError: unknown;
  interface Link {
    nc: NatsConnection;
    js: JetStreamClient;
    jsm: JetStreamManager;
  }
  let link: Promise<Link> | undefined;
  // First connection is retried on demand; once up, the client reconnects by itself.
  const connectOnce = async (): Promise<Link> => {
    const nc = await nats.connect({
      servers,
      user,
      pass,
      ...(tls ? { tls: {} } : {}),
      noRandomize,
      timeout: timeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 10_000,
      name: `shoal-bus ${ns}`,
    });
    void nc.closed().then((err) => {
      if (err) lastError = err;
    });
    try {
      const jsm = await nc.jetstreamManager({ timeout: timeoutMs });
      await ensureStream(jsm);
      return { nc, js: nc.jetstream({ timeout: timeoutMs }), jsm };
    } catch (err) {
      // Connected but unusable (JetStream disabled, no permission): do not leak the connection.
      await nc.close().catch(() => undefined);
      throw err;
    }
  };
  const connected = (): Promise<Link> => {
    if (!link) {
      link = connectOnce();
      link.then(
        (l) => {
          if (closed) void l.nc.close();
        },
        (err: unknown) => {
          lastError = err;
          link = undefined;
        },
      );
    }
    return link;
  };

  /** Entries per subject the stream may hold (other clients may keep more history than we do). */
  let physical = historySize + 1;
  const ensureStream = async (jsm: JetStreamManager, attempt = 0): Promise<void> => {
    let config: StreamConfig;
    try {
      config = (await jsm.streams.info(stream)).config;
    } catch (err) {
      if (apiCode(err) !== STREAM_NOT_FOUND) throw err;
      try {
        await jsm.streams.add({
          name: stream,
          subjects: [`shoal.${token(ns)}.>`],
          storage: nats.StorageType.File,
          discard: nats.DiscardPolicy.Old,
          num_replicas: positiveInt(options.replicas ?? replicas, 1),
          // One extra slot per subject for the marker, so a full window of messages fits beside it.
          max_msgs_per_subject: historySize + 1,
          max_age: nanos(ttlMs),
          // Deduplication is unused (offsets are compare-and-set); it must not outlive max_age.
          duplicate_window: nanos(Math.min(ttlMs, 120_000)),
        });
        physical = historySize + 1;
        return;
      } catch (addErr) {
        // Another client created it first, maybe with other limits: take the update path.
        if (apiCode(addErr) !== STREAM_NAME_IN_USE || attempt > 0) throw addErr;
        return ensureStream(jsm, attempt + 1);
      }
    }
    physical = Math.max(historySize + 1, config.max_msgs_per_subject);
    // Clients of one namespace may ask for different windows: the stream keeps the largest.
    if (config.max_msgs_per_subject < historySize + 1 || (config.max_age !== 0 && config.max_age < nanos(ttlMs))) {
      await jsm.streams.update(stream, {
        ...config,
        max_msgs_per_subject: physical,
        max_age: config.max_age === 0 ? 0 : Math.max(config.max_age, nanos(ttlMs)),
      });
    }
  };

  const tails = new Map<string, Tail>();
  const learn = (channel: string, tail: Tail) => {
    const known = tails.get(channel);
    if (!known || known.seq < tail.seq) tails.set(channel, tail);
  };

  const call = async <T>(what: string, op: (l: Link) => Promise<T>, limitMs = timeoutMs): Promise<T> => {
    if (closed) throw new BusUnavailableError(label, 'this bus was closed; open a new one with createBus()');
    try {
      const attempt = async (l: Link) => {
        try {
          return await op(l);
        } catch (err) {
          // The stream was deleted under us (no stream captures the subject any more): make it again, once.
          if (!missingStream(err)) throw err;
          tails.clear();
          await ensureStream(l.jsm);
          return op(l);
        }
      };
      return await withDeadline(() => connected().then(attempt), Math.max(0, limitMs), timeoutMs);
    } catch (err) {
      if (err instanceof BusUnavailableError) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      const last =
        lastError instanceof Error && lastError.message !== detail ? ` (last error: ${lastError.message})` : '';
      throw new BusUnavailableError(
        label,
        `${what} failed: ${detail}${last}. Check that nats-server runs with JetStream enabled (-js) and is reachable, or raise timeoutMs.`,
        { cause: err },
      );
    }
  };

  /** The channel's newest entry, straight from the stream leader; writes the marker of a new log. */
  const fetchTail = async (l: Link, channel: string): Promise<Tail> => {
    const subject = subjectOf(channel);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      try {
        const m = await l.jsm.streams.getMessage(stream, { last_by_subj: subject });
        const [epoch, offset] = decodeEntry(m);
        const tail = { epoch, offset, seq: m.seq };
        tails.set(channel, tail);
        return tail;
      } catch (err) {
        if (apiCode(err) !== NO_MESSAGE) throw err;
      }
      const epoch = randomUUID();
      try {
        const ack = await l.js.publish(subject, JSON.stringify([epoch, 0]), {
          expect: { lastSubjectSequence: 0, streamName: stream },
        });
        const tail = { epoch, offset: 0, seq: ack.seq };
        tails.set(channel, tail);
        return tail;
      } catch (err) {
        if (apiCode(err) !== WRONG_LAST_SEQUENCE) throw err; // another client wrote the marker first
      }
    }
    throw new Error(`could not read the head of ${channel} after ${MAX_CAS_ATTEMPTS} attempts`);
  };

  const append = async (l: Link, channel: string, event: string, data: string): Promise<BusMessage> => {
    const subject = subjectOf(channel);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const tail = tails.get(channel) ?? (await fetchTail(l, channel));
      const message: BusMessage = {
        channel,
        epoch: tail.epoch,
        offset: tail.offset + 1,
        event,
        data,
        publishedAt: Date.now(),
      };
      const body = JSON.stringify([message.epoch, message.offset, event, data, message.publishedAt]);
      try {
        const ack = await l.js.publish(subject, body, {
          expect: { lastSubjectSequence: tail.seq, streamName: stream },
        });
        learn(channel, { epoch: message.epoch, offset: message.offset, seq: ack.seq });
        return message;
      } catch (err) {
        if (apiCode(err) !== WRONG_LAST_SEQUENCE) throw err;
        // Someone else appended (or the log was reset): start again from the real head.
        if (tails.get(channel) === tail) tails.delete(channel);
        if (attempt > 4) await sleep(Math.random() * Math.min(50, attempt * 2));
      }
    }
    throw new Error(`publish on ${channel} lost the offset race ${MAX_CAS_ATTEMPTS} times; too many publishers`);
  };

  // One in-flight publish per channel per client: they would only race each other.
  const lanes = new Map<string, Promise<unknown>>();
  const inLane = <T>(channel: string, task: () => Promise<T>): Promise<T> => {
    const prev = lanes.get(channel) ?? Promise.resolve();
    const next = prev.then(task, task);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    lanes.set(channel, settled);
    void settled.then(() => {
      if (lanes.get(channel) === settled) lanes.delete(channel);
    });
    return next;
  };

  let handler: MessageHandler | undefined;
  const subscriptions = new Map<string, Promise<ConsumerMessages>>();
  const onLive = (channel: string, m: JsMsg) => {
    const [epoch, offset, event, data, publishedAt] = decodeEntry(m);
    learn(channel, { epoch, offset, seq: m.seq });
    if (offset === 0 || !subscriptions.has(channel)) return; // a marker, or unsubscribed meanwhile
    deliver(handler, { channel, epoch, offset, event, data, publishedAt });
  };

  const position = (channel: string): Promise<Position> =>
    call('position', async (l) => {
      const tail = await fetchTail(l, channel);
      return { epoch: tail.epoch, offset: tail.offset };
    });

  return {
    kind: 'nats',
    capabilities: { history: true, shared: true },

    publish(channel, input) {
      // The deadline runs from the call, not from the turn in the lane: publishes queued behind a
      // stuck one must fail together within timeoutMs, not one timeout after another.
      const deadline = Date.now() + timeoutMs;
      return inLane(channel, () =>
        call('publish', (l) => append(l, channel, input.event, input.data), deadline - Date.now()),
      );
    },

    async subscribe(channel) {
      if (subscriptions.has(channel)) return;
      const started = call('subscribe', async (l) => {
        const tail = await fetchTail(l, channel);
        const consumer = await l.js.consumers.get(stream, {
          filterSubjects: subjectOf(channel),
          opt_start_seq: tail.seq + 1,
        });
        // expires 5 s → idle heartbeats every 2.5 s: a consumer lost with its server (cluster failover) is
        // noticed and recreated in seconds, not after the 30 s default.
        const messages = await consumer.consume({
          callback: (m) => {
            if (subscriptions.get(channel) === started) onLive(channel, m);
          },
          expires: 5000,
        });
        // This attempt timed out (JetStream without a leader answers late) or was replaced meanwhile:
        // a consumer left running would deliver every message again beside the current one.
        if (subscriptions.get(channel) !== started) {
          await messages.close().catch(() => undefined);
          throw new Error('subscribe was abandoned');
        }
        return messages;
      });
      subscriptions.set(channel, started);
      try {
        await started;
      } catch (err) {
        subscriptions.delete(channel);
        throw err;
      }
    },

    async unsubscribe(channel) {
      const sub = subscriptions.get(channel);
      if (!sub) return;
      subscriptions.delete(channel);
      const messages = await sub.catch(() => undefined);
      if (messages) await call('unsubscribe', () => messages.close().then(() => undefined));
    },

    onMessage(h) {
      handler = h;
    },

    read(channel, after, readOptions = {}): Promise<ReadResult> {
      return call('read', async (l) => {
        const tail = await fetchTail(l, channel);
        const none = (complete: boolean) => ({ epoch: tail.epoch, messages: [], complete });
        if (readOptions.epoch !== undefined && readOptions.epoch !== tail.epoch) return none(false);
        if (after >= tail.offset || after < tail.offset - historySize) {
          return none(isComplete(after, tail.offset, historySize, undefined));
        }
        const upTo = Math.min(tail.offset, after + positiveInt(readOptions.limit, historySize));
        // Bounded: the subject holds at most `physical` entries. (A scan, since JetStream cannot seek by our offset.)
        const consumer = await l.js.consumers.get(stream, { filterSubjects: subjectOf(channel) });
        const batch = await consumer.fetch({ max_messages: physical, expires: Math.max(1000, timeoutMs / 2) });
        const messages: BusMessage[] = [];
        let first: number | undefined;
        for await (const m of batch) {
          const [epoch, offset, event, data, publishedAt] = decodeEntry(m);
          if (epoch === tail.epoch && offset > after) {
            first ??= offset;
            if (offset <= upTo) messages.push({ channel, epoch, offset, event, data, publishedAt });
          }
          if (offset >= upTo || m.seq >= tail.seq || m.info.pending === 0) break;
        }
        await consumer.delete().catch(() => false);
        const complete = isComplete(after, tail.offset, historySize, first);
        return { epoch: tail.epoch, messages: complete ? messages : [], complete };
      });
    },

    position,

    ping() {
      return call('ping', async (l) => {
        await l.nc.flush();
      });
    },

    async close() {
      if (closed) return;
      closed = true;
      const current = link;
      const subs = [...subscriptions.values()];
      subscriptions.clear();
      if (!current) return;
      const l = await current.catch(() => undefined);
      if (!l) return;
      for (const sub of subs) (await sub.catch(() => undefined))?.stop();
      await settleWithin(l.nc.close(), timeoutMs);
    },
  } satisfies Bus;
}

/** A stream entry as append() writes it; a log's marker is only [epoch, 0]. */
type Entry = [epoch: string, offset: number, event: string, data: string, publishedAt: number];

function decodeEntry(m: { string(): string }): Entry {
  return JSON.parse(m.string()) as Entry;
}

function missingStream(err: unknown): boolean {
  return apiCode(err) === STREAM_NOT_FOUND || (err as { code?: string } | null)?.code === '503';
}

/** The JetStream API error code of a failure, if it is one. */
function apiCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } } | null)?.api_error?.err_code;
}

/**
 * A subject token that is safe for any channel name: bytes outside [A-Za-z0-9_:-] become
 * `=XX`, so `.`, `*`, `>` and spaces never split or widen a subject, and names stay unique.
 */
export function token(name: string): string {
  if (name === '') return '=';
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_:-]/.test(c) ? c : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function streamName(namespace: string): string {
  const clean = namespace.replace(/[^A-Za-z0-9_-]/g, '_');
  // Names that needed cleaning get a hash suffix so two namespaces never share a stream.
  const suffix = clean === namespace ? '' : `_${createHash('sha256').update(namespace).digest('hex').slice(0, 8)}`;
  return `SHOAL_${clean}${suffix}`;
}

function parseUrl(url: string) {
  const servers: string[] = [];
  let user: string | undefined;
  let pass: string | undefined;
  let tls = false;
  const shown: string[] = [];
  // `nats://a:4222,b:4222`: a server without a scheme takes the first one's (and its credentials).
  const first = /^([a-z]+:\/\/(?:[^@/]*@)?)/i.exec(url)?.[1] ?? 'nats://';
  for (const part of url.split(',')) {
    let u: URL;
    try {
      u = new URL(/^[a-z]+:\/\//i.test(part.trim()) ? part.trim() : `${first}${part.trim()}`);
    } catch (err) {
      throw new ConfigError(`nats bus: "${part}" is not a URL; write nats://host:4222`, { cause: err });
    }
    if (u.protocol !== 'nats:' && u.protocol !== 'tls:') {
      throw new ConfigError(`nats bus: "${u.protocol}" is not a NATS URL scheme; write nats://host:4222`);
    }
    if (u.protocol === 'tls:') tls = true;
    if (u.username) user = decodeURIComponent(u.username);
    if (u.password) pass = decodeURIComponent(u.password);
    servers.push(`${u.hostname}:${u.port || 4222}`);
    shown.push(`nats://${u.hostname}:${u.port || 4222}`);
  }
  // ?replicas=3 (the stream's JetStream replicas, for a cluster) and ?noRandomize=1 (try servers in the order given).
  const params = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const replicas = params.has('replicas') ? Number(params.get('replicas')) : undefined;
  if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5)) {
    throw new ConfigError(`nats bus: replicas=${params.get('replicas')} must be 1 to 5, e.g. ?replicas=3`);
  }
  const noRandomize = params.get('noRandomize') === '1' || params.get('noRandomize') === 'true';
  return { servers, user, pass, tls, replicas, noRandomize, label: `nats (${shown.join(',')})` };
}
