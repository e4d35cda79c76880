/**
 * The message bus contract. Web nodes publish; gateway nodes subscribe to the
 * channels their clients joined and replay history for clients that resume.
 * Every backend (memory, sqlite, redis, postgres, nats, amqp) implements only its
 * primitives (BusDriver in base.ts) over BusBase and passes test/conformance/bus.
 *
 * Ordering and offsets: each channel has a log with an `epoch` (an opaque id of
 * this incarnation of the log) and strictly increasing integer offsets starting at 1,
 * assigned atomically at publish. If the log is lost (backend restarted without
 * persistence, stream deleted, retention reset) the epoch changes, which is how a
 * resuming client learns it must reload state instead of getting a partial replay.
 * A channel nobody published on yet already has the epoch its first publish will
 * carry (position() and read() report it), so a client that joined an empty channel
 * resumes cleanly. After close(), every call rejects with BusUnavailableError.
 */
import type { Logger } from '../core/logger.js';

export interface BusMessage {
  channel: string;
  epoch: string;
  offset: number;
  /** Application event name. */
  event: string;
  /** Encoded payload (JSON text); the bus never parses it. */
  data: string;
  /** Milliseconds since the epoch, set by the publisher. */
  publishedAt: number;
  /**
   * Set on the first message a subscriber gets after its channel's log moved to a new epoch
   * that continues the subscriber's (a replica promoted after a failover): that epoch, and the
   * offset this one's messages follow (ReadResult.from). Without it, a new epoch is a new log.
   */
  continues?: Position;
}

export interface PublishInput {
  event: string;
  data: string;
}

export interface Position {
  epoch: string;
  /** Offset of the newest message, 0 when the channel has none. */
  offset: number;
}

export interface ReadResult {
  epoch: string;
  /** Messages with offset > `after`, oldest first, at most `limit`. */
  messages: BusMessage[];
  /**
   * false when the caller cannot replay without a gap: messages after `after` were
   * already trimmed (the window of the newest `historySize` offsets, or the TTL, was
   * exceeded), `after` is beyond the newest offset, or the epoch differs. `messages`
   * is then empty: never a partial replay.
   */
  complete: boolean;
  /**
   * Set when the asked `epoch` is an earlier incarnation that this log continues: a replica
   * promoted after a failover keeps the old log's offsets, under a new epoch. The answer is in
   * the new epoch and `messages` follow this offset: `after`, or lower when the promotion lost
   * offsets the caller had seen (replication is asynchronous) and the new log reissued them to
   * new messages. The caller carries on from (epoch, from).
   */
  from?: number;
}

export interface BusCapabilities {
  /** read() returns history; without it, resume always answers recovered:false. */
  history: boolean;
  /** Messages published in one process reach subscribers in another. */
  shared: boolean;
}

export type MessageHandler = (message: BusMessage) => void;

export interface Bus {
  readonly kind: string;
  readonly capabilities: BusCapabilities;

  publish(channel: string, input: PublishInput): Promise<BusMessage>;
  /**
   * Live delivery: `handler` (set once in onMessage) receives every message
   * published on a subscribed channel after subscribe() resolved, in offset order per channel.
   * Subscribing twice to one channel is a no-op. A client receives its own messages too.
   */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** The single sink for live messages of all subscribed channels. A throw is reported, and delivery goes on. */
  onMessage(handler: MessageHandler): void;

  /**
   * History after `after` (exclusive). `epoch` given and different from the current one →
   * complete:false, no messages; unless the log continues that epoch (ReadResult.from).
   */
  read(channel: string, after: number, options?: { epoch?: string; limit?: number }): Promise<ReadResult>;
  position(channel: string): Promise<Position>;

  /** Resolves when the backend answers; rejects with BusUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface BusOptions {
  /** Separates independent apps/tests on one backend. */
  namespace?: string;
  /** How many messages (per channel) history keeps; default 1000. */
  historySize?: number;
  /** How long history keeps messages; default one day. */
  historyTtlMs?: number;
  /** How long one call may take before it rejects with BusUnavailableError; default 2000 for every backend. */
  timeoutMs?: number;
  /** Where a throwing onMessage handler or a failed catch-up is reported; default a pino logger at info. */
  logger?: Logger;
}
