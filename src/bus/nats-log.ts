import { randomUUID } from 'node:crypto';
import type { JetStreamClient, JetStreamManager, MsgRequest, NatsConnection, StreamConfig } from 'nats';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { NOTHING_LISTENS } from '../core/redis-client.js';
import { sleep } from '../core/timing.js';
import type { BusMessage } from './contract.js';
import { positiveInt } from './history.js';
import { token } from './nats-names.js';

/** The newest entry of a channel's log: the marker (offset 0) or its last message. */
export interface Tail {
  epoch: string;
  offset: number;
  seq: number;
}

export interface Link {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** For consumer creation: a short timeout, so a creation placed on a dead peer is retried at once (nats-consumer.ts). */
  jsmQuick: JetStreamManager;
}

export interface NatsLogSettings {
  nats: typeof import('nats');
  namespace: string;
  stream: string;
  servers: string[];
  user: string | undefined;
  pass: string | undefined;
  tls: boolean;
  noRandomize: boolean;
  /** The replicas asked for (`?replicas`, the option): an existing stream is brought to them. */
  replicas: number | undefined;
  /** The replicas when none were asked (defaultReplicas): a stream with fewer is raised to them, never lowered. */
  defaultReplicas: number;
  logger: Logger;
  historySize: number;
  ttlMs: number;
  timeoutMs: number;
  isClosed: () => boolean;
}

const WRONG_LAST_SEQUENCE = 10071;
const STREAM_NOT_FOUND = 10059;
const STREAM_NAME_IN_USE = 10058;
const REPLICAS_NOT_SUPPORTED = 10074;
const JETSTREAM_NOT_ENABLED = 10039;
/** How long a stream whose replicas changed may take to elect its leader (5 s measured from 1 to 3, nats-server 2.9). */
const RELEADER_MS = 15_000;
const NO_MESSAGE = 10037;
const MAX_CAS_ATTEMPTS = 200;
/** Republished entries live outside every stream's subjects (`shoal.<ns>.>`), so no stream stores them again. */
const LIVE_PREFIX = 'shoal_live';

/** How long one consumer creation may take: answered ones take milliseconds, one placed on a dead peer never answers. */
function attemptMsFor(timeoutMs: number): number {
  return Math.min(1000, Math.max(200, Math.floor(timeoutMs / 6)));
}

/**
 * A namespace's logs in one JetStream stream (subjects `shoal.<ns>.<channel>`, history capped
 * per subject and by age). A channel's log starts with a marker message carrying a random epoch
 * (offset 0); every message carries epoch and offset. Offsets are assigned by compare-and-set:
 * an append names the stream sequence of the channel's newest entry
 * (Nats-Expected-Last-Subject-Sequence) and the server rejects it if another publisher got
 * there first, so offsets are gap-free and in stream order across any number of publishers.
 * When the channel's entries are all gone (deleted stream, expiry) the next marker starts a new epoch.
 */
export function natsLog(o: NatsLogSettings) {
  const { nats, stream, historySize, timeoutMs } = o;
  const ns = o.namespace;
  const ttlMs = o.ttlMs;
  const { nanos } = nats;
  const subjectOf = (channel: string) => `shoal.${token(ns)}.${token(channel)}`;
  /** Where the stream republishes each stored entry of a channel, for core subscribers (live delivery). */
  const liveSubjectOf = (channel: string) => `${LIVE_PREFIX}.${token(ns)}.${token(channel)}`;
  const republish = { src: `shoal.${token(ns)}.>`, dest: `${LIVE_PREFIX}.${token(ns)}.>` };
  /** Whether the stream republishes entries to liveSubjectOf: streams made before it did cannot be changed to. */
  let republishes = false;
  /** Whether the stream has replicas: its leader may then accept two appends racing for one offset (ownsOffset). */
  let replicated = false;
  let lastError: unknown;
  let link: Promise<Link> | undefined;
  /** How far the last connection got: what a failing call's advice names (advice()). */
  let phase: 'server' | 'jetstream' | 'stream' | 'ready' = 'server';
  /** The connection is lost and nats.js is reconnecting: what is published now is queued, and dropped at its next dial. */
  let down = false;
  /** The server said it has no JetStream (no responders to its API, or not enabled for the account). */
  let noJetStream = false;
  /** The last connection was refused: nothing listens where the URL points. */
  let refused = false;
  // First connection is retried on demand; once up, the client reconnects by itself.
  const connectOnce = async (): Promise<Link> => {
    phase = 'server';
    down = false;
    noJetStream = false;
    refused = false;
    const nc = await nats
      .connect({
        servers: o.servers,
        user: o.user,
        pass: o.pass,
        ...(o.tls ? { tls: {} } : {}),
        noRandomize: o.noRandomize,
        timeout: timeoutMs,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 10_000,
        name: `shoal-bus ${ns}`,
      })
      .catch((err: unknown) => {
        refused = isConnectionRefused(err);
        throw refused ? refusedError(err, o.servers.length) : err;
      });
    void nc.closed().then((err) => {
      if (err) lastError = err;
    });
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === nats.Events.Disconnect) down = true;
        else if (s.type === nats.Events.Reconnect) down = false;
      }
    })().catch(() => undefined);
    try {
      phase = 'jetstream';
      const jsm = await nc.jetstreamManager({ timeout: timeoutMs });
      phase = 'stream';
      await ensureStream(jsm);
      phase = 'ready';
      const jsmQuick = await nc.jetstreamManager({ timeout: attemptMsFor(timeoutMs), checkAPI: false });
      return { nc, js: nc.jetstream({ timeout: timeoutMs }), jsm, jsmQuick };
    } catch (err) {
      if (phase === 'jetstream') {
        noJetStream = (err as { code?: string } | null)?.code === '503' || apiCode(err) === JETSTREAM_NOT_ENABLED;
      }
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
          if (o.isClosed()) void l.nc.close();
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
  const asked = o.replicas;
  const create = (jsm: JetStreamManager, replicas: number) =>
    jsm.streams.add({
      name: stream,
      subjects: [`shoal.${token(ns)}.>`],
      storage: nats.StorageType.File,
      discard: nats.DiscardPolicy.Old,
      num_replicas: replicas,
      // One extra slot per subject for the marker, so a full window of messages fits beside it.
      max_msgs_per_subject: historySize + 1,
      max_age: nanos(ttlMs),
      // Deduplication is unused (offsets are compare-and-set); it must not outlive max_age.
      duplicate_window: nanos(Math.min(ttlMs, 120_000)),
      // Live delivery: each entry, once stored, goes to plain subscribers (rejected appends never do).
      republish,
    });
  /** Waits (bounded) until the stream has a leader again: JetStream gives it a new raft group when its replicas change. */
  const leaderElected = async (jsm: JetStreamManager): Promise<void> => {
    const until = Date.now() + RELEADER_MS;
    while (Date.now() < until && !o.isClosed()) {
      const info = await jsm.streams.info(stream).catch(() => undefined);
      if (info && (info.cluster === undefined || info.cluster.leader)) return;
      await sleep(100);
    }
  };
  const ensureStream = async (jsm: JetStreamManager, attempt = 0): Promise<void> => {
    let config: StreamConfig;
    /** Whether JetStream runs as a cluster (its stream info names one): outside one, a stream holds 1 replica. */
    let clustered: boolean;
    try {
      const info = await jsm.streams.info(stream);
      config = info.config;
      clustered = info.cluster !== undefined;
    } catch (err) {
      if (apiCode(err) !== STREAM_NOT_FOUND) throw err;
      let replicas = positiveInt(asked, o.defaultReplicas);
      try {
        try {
          await create(jsm, replicas);
        } catch (addErr) {
          // The default asked for replicas a server outside a cluster cannot hold: it gets the one it can.
          if (asked !== undefined || replicas === 1 || apiCode(addErr) !== REPLICAS_NOT_SUPPORTED) throw addErr;
          o.logger.warn(
            { stream, replicas },
            'the NATS URL lists several servers, but they are not a JetStream cluster: the bus stream has 1 replica',
          );
          replicas = 1;
          await create(jsm, replicas);
        }
        physical = historySize + 1;
        republishes = true;
        replicated = replicas > 1;
        return;
      } catch (addErr) {
        // Another client created it first, maybe with other limits: take the update path.
        if (apiCode(addErr) !== STREAM_NAME_IN_USE || attempt > 0) throw addErr;
        return ensureStream(jsm, attempt + 1);
      }
    }
    physical = Math.max(historySize + 1, config.max_msgs_per_subject);
    republishes = config.republish?.src === republish.src && config.republish?.dest === republish.dest;
    replicated = config.num_replicas > 1;
    // Clients of one namespace may ask for different windows: the stream keeps the largest.
    const limits = {
      max_msgs_per_subject: physical,
      max_age: config.max_age === 0 ? 0 : Math.max(config.max_age, nanos(ttlMs)),
    };
    const widen = config.max_msgs_per_subject < historySize + 1 || limits.max_age !== config.max_age;
    // Replicas asked for are what the stream gets (JetStream moves a clustered stream to them in
    // place); the default only ever raises them, so a client listing one server leaves a stream alone.
    const replicas = asked ?? Math.max(config.num_replicas, clustered ? o.defaultReplicas : 1);
    if (replicas !== config.num_replicas) {
      try {
        // nats-server 2.9 outside a cluster accepts the change and keeps one copy: refuse it as creation would.
        if (!clustered && replicas > 1) {
          throw Object.assign(new Error('replicas > 1 not supported in non-clustered mode'), {
            api_error: {
              err_code: REPLICAS_NOT_SUPPORTED,
              description: 'replicas > 1 not supported in non-clustered mode',
            },
          });
        }
        await jsm.streams.update(stream, { ...config, ...limits, num_replicas: replicas });
        o.logger.warn(
          { stream, from: config.num_replicas, to: replicas },
          `the bus stream had ${config.num_replicas} replica(s): changed to ${replicas}${asked === undefined ? ' (one per server the NATS URL lists, at most 3)' : ', as asked'}; it has no leader until its new replicas elect one (seconds)`,
        );
        replicated = replicas > 1;
        await leaderElected(jsm);
        return;
      } catch (err) {
        const refused = `JetStream refused to change the replicas of the stream ${stream} from ${config.num_replicas} to ${replicas}: ${describe(err)}`;
        if (asked !== undefined) {
          const fix = `ask for ${config.num_replicas} (?replicas=${config.num_replicas}), or give it servers enough for ${replicas} (then \`nats stream edit ${stream} --replicas ${replicas}\` or restart)`;
          const message = `${refused}; ${fix}`;
          throw apiCode(err) === REPLICAS_NOT_SUPPORTED
            ? new ConfigError(`nats bus: ${message}`, { cause: err })
            : new Error(message, { cause: err });
        }
        o.logger.warn({ stream, err }, `${refused}; the bus goes on with ${config.num_replicas}`);
      }
    }
    if (widen) await jsm.streams.update(stream, { ...config, ...limits });
  };

  const tails = new Map<string, Tail>();
  const learn = (channel: string, tail: Tail) => {
    const known = tails.get(channel);
    if (!known || known.seq < tail.seq) tails.set(channel, tail);
  };

  /** Runs `op` on the connection; a stream deleted under us (no stream captures the subject any more) is made again, once. */
  const withLink = async <T>(op: (l: Link) => Promise<T>): Promise<T> => {
    const l = await connected();
    try {
      return await op(l);
    } catch (err) {
      if (!missingStream(err)) throw err;
      tails.clear();
      await ensureStream(l.jsm);
      return op(l);
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

  /**
   * Whether our entry (stream sequence `seq`, appended after the channel's entry `tail`) holds its
   * offset alone. A replicated stream's leader (nats-server 2.9) checks
   * Nats-Expected-Last-Subject-Sequence against the entries it has applied, not against appends still
   * being replicated, so two appends racing from one tail can both be stored with the same offset.
   * Subscribers deliver the first in the stream and drop the other as a duplicate offset, so only the
   * first may be acknowledged. Looks at the subject's entries between `tail` and ours (usually none:
   * one request finds ours).
   */
  const ownsOffset = async (l: Link, subject: string, tail: Tail, seq: number, offset: number): Promise<boolean> => {
    let from = tail.seq + 1;
    for (let i = 0; i < MAX_CAS_ATTEMPTS && from < seq; i++) {
      // next_by_subj: the subject's first entry at or after `from` (nats-server 2.9+; nats.js types only seq and last_by_subj).
      const query = { seq: from, next_by_subj: subject } as unknown as MsgRequest;
      const m = await l.jsm.streams.getMessage(stream, query);
      if (m.seq >= seq) return true;
      const [epoch, taken] = decodeEntry(m);
      if (epoch === tail.epoch && taken >= offset) return false;
      from = m.seq + 1;
    }
    return true;
  };

  /**
   * Appends one message by `deadline` (when the caller gives up). `sent.sent` says whether a failure
   * leaves its outcome unknown: true from the moment the message is handed to the connection until
   * JetStream answers that it did not store it (a wrong tail, no stream to take it); an unanswered
   * request may still be stored later. Nothing is handed over after the deadline, nor while the
   * connection is down: nats.js discards what it queued meanwhile when it dials again (protocol.js
   * prepare), so such a publish was lost and failed only at the deadline, however soon the client
   * reconnected. It now waits for the reconnection, and is known not sent if none comes in time.
   */
  const append = async (
    l: Link,
    channel: string,
    event: string,
    data: string,
    deadline: number,
    sent: { sent: boolean } = { sent: false },
  ): Promise<BusMessage> => {
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
      // Reconnecting: wait for it (bounded by the deadline) rather than queue what the next dial discards.
      for (let i = 0; down && Date.now() < deadline && i < 10_000; i++) await sleep(20);
      if (down)
        throw new Error('not connected to a NATS server (the client is reconnecting); the message was not sent');
      if (Date.now() >= deadline) throw new Error('the deadline passed before the message was sent');
      try {
        sent.sent = true;
        const ack = await l.js.publish(subject, body, {
          expect: { lastSubjectSequence: tail.seq, streamName: stream },
        });
        if (replicated && ack.seq > tail.seq + 1 && !(await ownsOffset(l, subject, tail, ack.seq, message.offset))) {
          // Stored but never delivered nor read: as good as not published.
          sent.sent = false;
          // A racing append holds this offset: ours is never delivered, and reads skip it. It stays in the
          // log (deleting a subject's newest entry leaves nats-server 2.9 unable to find the subject's last
          // entry, which would start a new epoch); the next attempt appends after it.
          if (tails.get(channel) === tail) tails.delete(channel);
          continue;
        }
        learn(channel, { epoch: message.epoch, offset: message.offset, seq: ack.seq });
        return message;
      } catch (err) {
        // JetStream answered with an error, or no stream took the request (503, no responders): not stored.
        if (apiCode(err) !== undefined || (err as { code?: string } | null)?.code === '503') sent.sent = false;
        if (apiCode(err) !== WRONG_LAST_SEQUENCE) throw err;
        // Someone else appended (or the log was reset): start again from the real head.
        if (tails.get(channel) === tail) tails.delete(channel);
        if (attempt > 4) await sleep(Math.random() * Math.min(50, attempt * 2));
      }
    }
    throw new Error(`publish on ${channel} lost the offset race ${MAX_CAS_ATTEMPTS} times; too many publishers`);
  };

  return {
    subjectOf,
    liveSubjectOf,
    /** Known once connected (withLink): whether live delivery can use liveSubjectOf. */
    republishes: () => republishes,
    withLink,
    fetchTail,
    append,
    learn,
    /** Entries per subject the stream may hold (other clients may keep more history than we do). */
    physical: () => physical,
    lastError: () => lastError,
    /** What to check after a failed call, from how far the connection got and whether it is up. */
    advice(): string {
      if (phase === 'server' && refused)
        return 'Start nats-server there with JetStream (nats-server -js), or correct the host and port in the bus URL';
      if (phase === 'server') return 'Check that nats-server is running and reachable';
      if (phase === 'jetstream' && noJetStream) return 'Check that nats-server runs with JetStream enabled (-js)';
      if (phase === 'jetstream') {
        return 'The server answers, but its JetStream does not: on a cluster, JetStream needs most of its servers up and a meta leader (elected within seconds of losing one); start the servers that are down';
      }
      if (phase === 'ready' && down)
        return 'The connection to NATS was lost and is being made again: check that the servers are reachable';
      const state =
        phase === 'stream'
          ? `JetStream answers, but the stream ${stream} does not: it has no leader`
          : `The stream ${stream} may have no leader`;
      return (
        `${state}, while it elects one (4–9 s after losing it) or while most of the servers holding its replicas ` +
        `are down (with 1 replica, its only one; \`nats stream info ${stream}\` names them). Start those servers; ` +
        'on a cluster give the stream replicas (?replicas=3)'
      );
    },
    /** The connection, if one was made or is being made. */
    current: () => link,
  };
}

/** A stream entry as append() writes it; a log's marker is only [epoch, 0]. */
export type Entry = [epoch: string, offset: number, event: string, data: string, publishedAt: number];

export function decodeEntry(m: { string(): string }): Entry {
  return JSON.parse(m.string()) as Entry;
}

function missingStream(err: unknown): boolean {
  return apiCode(err) === STREAM_NOT_FOUND || (err as { code?: string } | null)?.code === '503';
}

/** JetStream's own words for a failure, else its message. */
function describe(err: unknown): string {
  const api = (err as { api_error?: { description?: string } } | null)?.api_error?.description;
  return api ?? (err instanceof Error ? err.message : String(err));
}

/** nats.js's error when the server it tried last refused the connection: nothing listens there. */
function isConnectionRefused(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'CONNECTION_REFUSED';
}

/**
 * nats.js says only "CONNECTION_REFUSED": said in the words the other buses use, so the message
 * (whose bus label names the URL) tells that no connection was made rather than one lost.
 */
function refusedError(err: unknown, servers: number): Error {
  const why =
    servers > 1
      ? 'no connection could be made to any of the servers the URL lists; the last one tried refused it'
      : NOTHING_LISTENS;
  return new Error(`${why} (CONNECTION_REFUSED)`, { cause: err });
}

/** The JetStream API error code of a failure, if it is one. */
function apiCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } } | null)?.api_error?.err_code;
}
