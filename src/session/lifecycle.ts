import type { EndedSession, EndReason, SessionStore } from '../stores/contract.js';
import { decodeValue } from './codec.js';

/** What onSessionEnd receives: the session as last committed. */
export interface EndedSnapshot {
  id: string;
  userId: string | null;
  createdAt: number;
  lastSeenAt: number;
  /** The deadline that ended it (for timeouts), or when it was destroyed. */
  endedAt: number;
  attributes: Record<string, unknown>;
}

export interface EndInfo {
  reason: EndReason;
  /** 1 normally; higher when a previous handler's process died (or threw) before finishing. */
  attempt: number;
}

export type SessionEndHandler = (snapshot: EndedSnapshot, info: EndInfo) => void | Promise<void>;

export interface SweeperOptions {
  store: SessionStore;
  owner: string;
  onSessionEnd?: SessionEndHandler | undefined;
  /** How often each node looks for ended sessions. Default 250 ms (lag ≤ 1 s). */
  intervalMs?: number;
  /** A claim not acknowledged within this time goes to another node. Default 30 s. */
  leaseMs?: number;
  batch?: number;
  /** After this many failed attempts the end is dropped (and reported through onError). Default 5. */
  maxAttempts?: number;
  onError?: (err: unknown, id: string, attempt: number) => void;
  /**
   * The store refused a claim (it is unreachable, usually). Polled several times a second, so this
   * is where an outage is logged once rather than per call. Default: onError(err, '', 0).
   */
  onClaimFailed?: (err: unknown) => void;
  /** A claim went through (whatever it found): the store answers again after onClaimFailed. */
  onClaimSucceeded?: () => void;
  /** Runs before the handler, once per claim (e.g. to close an expired session's sockets). */
  onClaimed?: (id: string, reason: EndReason) => Promise<void>;
  /**
   * Without a handler: true while another sweeper in this process has one for the same sessions,
   * so this one leaves the ends to it instead of claiming (and dropping) them.
   */
  standDown?: () => boolean;
  /** Turns a stored value into the handler's value (decrypting it when encryption is on). Default: JSON.parse. */
  decode?: (id: string, key: string, stored: string) => unknown;
}

/** Why onSessionEnd cannot be had on a store without the lifecycle capability (memcached). */
export function endsUnsupported(kind: string): string {
  return `onSessionEnd needs a store that can list ended sessions; the ${kind} store cannot (see docs/stores/${kind}.md). Use sqlite, redis or postgres.`;
}

/**
 * Every node runs one sweeper. Each tick claims a batch of ended sessions
 * atomically in the store (so across the cluster each end is claimed by
 * exactly one node), runs onSessionEnd, then acknowledges, which deletes the
 * snapshot. A node that dies mid-handler never acknowledges: its lease lapses
 * and another node retries with attempt + 1. Without a handler the sweeper
 * still runs: it is what removes ended sessions from the store.
 */
export class Sweeper {
  readonly #o: Required<
    Omit<
      SweeperOptions,
      'onSessionEnd' | 'onError' | 'onClaimed' | 'decode' | 'onClaimFailed' | 'onClaimSucceeded' | 'standDown'
    >
  > &
    SweeperOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<number> | undefined;
  #stopped = false;

  constructor(options: SweeperOptions) {
    this.#o = { intervalMs: 250, leaseMs: 30_000, batch: 50, maxAttempts: 5, ...options };
  }

  start(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setInterval(() => {
      if (this.#o.standDown?.()) return;
      if (!this.#running) this.#running = this.#drain().finally(() => (this.#running = undefined));
    }, this.#o.intervalMs);
    this.#timer.unref(); // a sweeper alone must not keep a process alive
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => {});
  }

  /**
   * Sweeps again at once while sweeps find something (a backlog, e.g. many sessions expiring
   * together; a store may hand out a batch in shares), bounded so one tick never runs for long.
   */
  async #drain(): Promise<number> {
    let total = 0;
    const until = Date.now() + 5 * this.#o.intervalMs;
    for (let round = 0; round < 50 && !this.#stopped; round++) {
      const { claimed, handled } = await this.#sweepOnce(Date.now());
      total += handled;
      if (claimed === 0 || Date.now() > until) break;
    }
    return total;
  }

  /** One pass: claims and handles what is due now. Resolves to the number handled. */
  async sweep(now = Date.now()): Promise<number> {
    return (await this.#sweepOnce(now)).handled;
  }

  /** One pass: claims and handles what is due now. */
  async #sweepOnce(now: number): Promise<{ claimed: number; handled: number }> {
    const o = this.#o;
    let ended: Awaited<ReturnType<SessionStore['claimEnded']>>;
    try {
      ended = await o.store.claimEnded({ now, limit: o.batch, leaseMs: o.leaseMs, owner: o.owner });
    } catch (err) {
      if (o.onClaimFailed) o.onClaimFailed(err);
      else o.onError?.(err, '', 0);
      return { claimed: 0, handled: 0 };
    }
    o.onClaimSucceeded?.();
    // The batch is handled concurrently so the whole claim finishes well inside one lease.
    const results = await Promise.all(ended.map((e) => this.#handle(e)));
    return { claimed: ended.length, handled: results.filter(Boolean).length };
  }

  async #handle({ snapshot, reason, attempt }: EndedSession): Promise<boolean> {
    const o = this.#o;
    if (this.#stopped) return false; // leave it to lapse to another node
    try {
      await o.onClaimed?.(snapshot.id, reason);
      if (attempt <= o.maxAttempts && o.onSessionEnd) {
        const m = snapshot.meta;
        const endedAt = reason === 'destroyed' ? m.lastSeenAt : Math.min(m.idleDeadline, m.absoluteDeadline);
        await o.onSessionEnd(
          {
            id: snapshot.id,
            userId: m.userId,
            createdAt: m.createdAt,
            lastSeenAt: m.lastSeenAt,
            endedAt,
            attributes: decodeAll(snapshot.id, snapshot.attributes, o.decode),
          },
          { reason, attempt },
        );
      } else if (o.onSessionEnd) {
        o.onError?.(new Error(`onSessionEnd gave up after ${o.maxAttempts} attempts`), snapshot.id, attempt);
      }
      await o.store.ackEnded(snapshot.id);
      return true;
    } catch (err) {
      o.onError?.(err, snapshot.id, attempt); // not acked: retried after the lease
      return false;
    }
  }
}

function decodeAll(
  id: string,
  attributes: Record<string, string>,
  decode: SweeperOptions['decode'],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, text] of Object.entries(attributes)) {
    try {
      out[key] = decode ? decode(id, key, text) : decodeValue(key, text);
    } catch {
      // The handler must run regardless; a value it cannot read is left out rather than handed over as ciphertext.
      if (!decode) out[key] = text;
    }
  }
  return out;
}
