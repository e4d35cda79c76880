import { withDeadline } from '../core/deadline.js';
import { BusUnavailableError, ConfigError, type PublishOutcome } from '../core/errors.js';
import { defaultLogger, type Logger } from '../core/logger.js';
import { failureDetail } from '../core/redis-client.js';
import type {
  Bus,
  BusCapabilities,
  BusMessage,
  BusOptions,
  MessageHandler,
  Position,
  PublishInput,
  ReadResult,
} from './contract.js';
import { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL_MS, deliver, isComplete, positiveInt } from './history.js';
import type { Backlog } from './ordered-delivery.js';

/** How long one bus call may take when BusOptions.timeoutMs is not given, for every backend. */
export const DEFAULT_BUS_TIMEOUT_MS = 2000;

const CLOSED = 'this bus was closed; open a new one with createBus()';

// Amortised: the read window is exact anyway, so physical trimming only bounds what the backend holds.
const TRIM_EVERY = 16;

/** One snapshot of a channel's log: its head and the messages after some offset, oldest first. */
export interface LogRange {
  epoch: string;
  /** Newest offset of the log. */
  last: number;
  messages: BusMessage[];
  /**
   * Set when the asked `epoch` is an earlier incarnation that this log continues (a replica
   * promoted after a failover kept its offsets): the offset `messages` follow, which is `after`,
   * or lower when the new log reissued offsets after it to new messages.
   */
  from?: number;
}

/**
 * What a backend implements; BusBase turns it into a Bus. Every primitive runs inside
 * BusBase.call (closed check, deadline, BusUnavailableError) unless said otherwise.
 */
export interface BusDriver {
  readonly kind: string;
  readonly capabilities: BusCapabilities;
  /**
   * Assigns the next offset of `channel` and stores the message; `deadline` is when the caller gives up.
   * A driver with `reportsSends` keeps `attempt.sent` true while the message may be stored (handed to
   * the connection, not refused), so a failure says whether its outcome is unknown (PublishOutcome).
   */
  append(channel: string, input: PublishInput, deadline: number, attempt: { sent: boolean }): Promise<BusMessage>;
  /** Whether append() keeps `attempt.sent`; otherwise every failed append's outcome is unknown. */
  readonly reportsSends?: boolean;
  /**
   * The log after `after` (exclusive), at most `limit` messages. It may leave out messages
   * when `epoch` is given and differs, or when `after` lies outside the newest `historySize`
   * offsets: the answer is incomplete then anyway.
   */
  range(channel: string, after: number, limit: number, deadline: number, epoch?: string): Promise<LogRange>;
  /** The channel's epoch and newest offset; an empty channel gets (and keeps) the epoch of its first message. */
  head(channel: string, deadline: number): Promise<Position>;
  /** Starts live delivery of a channel (not yet listened to) through BusBase.deliver; not deadline-bound. */
  listen(channel: string): Promise<void>;
  /** Stops live delivery of a listened channel; not deadline-bound. */
  unlisten(channel: string): Promise<void>;
  /** Resolves when the backend answers. */
  ping(): Promise<void>;
  /** Releases connections and timers; called once. */
  close(): Promise<void>;
  /** Drops history of `channel` up to offset `upTo`, called every few publishes; failures are ignored. */
  trimChannel?(channel: string, upTo: number): Promise<unknown>;
  /** Drops history published before `cutoff` in every channel, called on a timer once something was published. */
  trimAll?(cutoff: number): Promise<unknown>;
}

export interface BusIdentity {
  /** Names the backend (and its server, without secrets) in errors. */
  label: string;
  /** What to check when a call fails, e.g. "Check that Redis is running and reachable"; a function to fit the failure. */
  advice: string | (() => string);
  /** The connection's last error, named beside a call's own failure when it differs. */
  lastError?: () => unknown;
}

/**
 * The part every bus shares: option defaults, the closed state, bounded calls with one
 * error type, the handler slot, subscription bookkeeping, the complete/incomplete rule of
 * read() and trim scheduling. A driver supplies only its primitives (BusDriver).
 */
export class BusBase {
  readonly namespace: string;
  readonly historySize: number;
  readonly historyTtlMs: number;
  readonly timeoutMs: number;
  /** Where delivery problems are reported (a throwing handler, a failed catch-up); tagged with the bus. */
  readonly logger: Logger;
  /** Names the backend (and its server, without secrets) in errors; a driver may refine it once connected. */
  label: string;
  private isClosed = false;
  private handler: MessageHandler | undefined;
  private readonly listening = new Set<string>();
  private trimmer: NodeJS.Timeout | undefined;

  constructor(
    options: BusOptions,
    private readonly identity: BusIdentity,
  ) {
    this.namespace = options.namespace ?? 'shoal';
    this.historySize = positiveInt(options.historySize, DEFAULT_HISTORY_SIZE);
    this.historyTtlMs = positiveInt(options.historyTtlMs, DEFAULT_HISTORY_TTL_MS);
    this.timeoutMs = positiveInt(options.timeoutMs, DEFAULT_BUS_TIMEOUT_MS);
    this.label = identity.label;
    this.logger = options.logger ?? defaultLogger();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Hands a live message to the subscriber's handler (a throw is reported, delivery goes on). */
  readonly deliver = (message: BusMessage): void => deliver(this.handler, message, this.logger);
  /** The current handler, for delivery that is set up before onMessage() is called. */
  readonly currentHandler = (): MessageHandler | undefined => this.handler;

  closedError(outcome?: PublishOutcome): BusUnavailableError {
    return new BusUnavailableError(this.label, CLOSED, outcome ? { outcome } : {});
  }

  /**
   * Runs one backend operation: refused after close(), bounded by `deadline` (default: timeoutMs
   * from now), and any failure becomes a BusUnavailableError that names the backend and what to check.
   */
  async call<T>(
    what: string,
    op: (deadline: number) => Promise<T>,
    deadline?: number,
    outcome?: () => PublishOutcome,
  ): Promise<T> {
    if (this.isClosed) throw this.closedError(outcome && 'not-published');
    const until = deadline ?? Date.now() + this.timeoutMs;
    try {
      return await withDeadline(() => op(until), Math.max(0, until - Date.now()), this.timeoutMs);
    } catch (err) {
      if (err instanceof BusUnavailableError || err instanceof ConfigError) throw err;
      const { lastError } = this.identity;
      const advice = typeof this.identity.advice === 'string' ? this.identity.advice : this.identity.advice();
      const last = lastError?.();
      const detail = failureDetail(err, last instanceof Error ? last : undefined);
      const result = outcome?.();
      const said =
        result === 'unknown'
          ? ' The message was sent and not answered, so it may still be published: a retry may deliver it twice.'
          : result === 'not-published'
            ? ' The message was not published; sending it again is safe.'
            : '';
      throw new BusUnavailableError(this.label, `${what} failed: ${detail}.${said} ${advice}.`, {
        cause: err,
        ...(result ? { outcome: result } : {}),
      });
    }
  }

  /** The log after `after` as a replay: complete only when gap-free and within the window (history.ts). */
  async window(
    driver: BusDriver,
    what: string,
    channel: string,
    after: number,
    limit: number,
    epoch?: string,
  ): Promise<Backlog> {
    const r = await this.call(what, (deadline) =>
      driver.range(channel, after, Math.min(limit, this.historySize), deadline, epoch),
    );
    // Another epoch is a gap, unless this log continues it (then its messages follow r.from).
    const continued = epoch !== undefined && epoch !== r.epoch ? (r.from ?? null) : undefined;
    if (continued === null) return { epoch: r.epoch, last: r.last, messages: [], complete: false };
    const start = continued ?? after;
    const gapless = r.messages.every((m, i) => m.offset === start + 1 + i);
    const complete = gapless && isComplete(start, r.last, this.historySize, r.messages[0]?.offset);
    const answer: Backlog = { epoch: r.epoch, last: r.last, messages: complete ? r.messages : [], complete };
    if (continued !== undefined) answer.from = continued;
    return answer;
  }

  /** The Bus a driver's primitives make. */
  bus(driver: BusDriver): Bus {
    const base = this;
    return {
      kind: driver.kind,
      capabilities: driver.capabilities,

      async publish(channel, input) {
        const attempt = { sent: false };
        const message = await base.call(
          'publish',
          (deadline) => driver.append(channel, input, deadline, attempt),
          undefined,
          () => (attempt.sent || !driver.reportsSends ? 'unknown' : 'not-published'),
        );
        base.afterAppend(driver, message);
        return message;
      },

      async subscribe(channel) {
        if (base.isClosed) throw base.closedError();
        if (base.listening.has(channel)) return;
        await driver.listen(channel);
        if (base.isClosed) return;
        base.listening.add(channel);
      },

      async unsubscribe(channel) {
        if (base.isClosed) throw base.closedError();
        if (!base.listening.delete(channel)) return;
        await driver.unlisten(channel);
      },

      onMessage(handler) {
        base.handler = handler;
      },

      async read(channel, after, options = {}): Promise<ReadResult> {
        const limit = positiveInt(options.limit, base.historySize);
        const { epoch, messages, complete, from } = await base.window(
          driver,
          'read',
          channel,
          after,
          limit,
          options.epoch,
        );
        return from === undefined ? { epoch, messages, complete } : { epoch, messages, complete, from };
      },

      position(channel) {
        return base.call('position', (deadline) => driver.head(channel, deadline));
      },

      async ping() {
        await base.call('ping', () => driver.ping());
      },

      async close() {
        if (base.isClosed) return;
        base.isClosed = true;
        base.listening.clear();
        clearInterval(base.trimmer);
        await driver.close();
      },
    };
  }

  private afterAppend(driver: BusDriver, message: BusMessage): void {
    if (driver.trimChannel && message.offset % TRIM_EVERY === 0) {
      driver.trimChannel(message.channel, message.offset - this.historySize).catch(() => {});
    }
    if (driver.trimAll && !this.trimmer) {
      const trimAll = driver.trimAll.bind(driver);
      // Busy or failing: retried on the next tick; reads enforce the window meanwhile.
      this.trimmer = setInterval(
        () => void trimAll(Date.now() - this.historyTtlMs).catch(() => {}),
        Math.min(60_000, Math.max(1000, this.historyTtlMs / 10)),
      );
      this.trimmer.unref();
    }
  }
}
