import type { Logger } from '../core/logger.js';

export interface OutageLogOptions {
  logger: Logger;
  /** What is unreachable, as logs name it: e.g. "store redis redis://cache:6379/0" (passwords redacted). */
  dependency: string;
  /** What stops while it is: e.g. "session end handling". */
  paused: string;
  /** Least time between two lines while the outage lasts. Default 60 s. */
  intervalMs?: number;
  now?: () => number;
}

/**
 * Logs an outage of a dependency that is polled (the sweeper asks the store several times a second)
 * as three kinds of line instead of one per failed call: one when it starts, at most one per
 * interval while it lasts (with the number of failures since the previous line), one when it ends.
 */
export class OutageLog {
  readonly #o: Required<OutageLogOptions>;
  /** When the outage began; undefined while the dependency answers. */
  #since: number | undefined;
  #lastLine = 0;
  #sinceLastLine = 0;
  #total = 0;

  constructor(options: OutageLogOptions) {
    this.#o = { intervalMs: 60_000, now: Date.now, ...options };
  }

  get down(): boolean {
    return this.#since !== undefined;
  }

  failed(err: unknown): void {
    const { logger, dependency, paused, intervalMs } = this.#o;
    const now = this.#o.now();
    this.#total += 1;
    const reason = err instanceof Error ? err.message : String(err);
    if (this.#since === undefined) {
      this.#since = this.#lastLine = now;
      this.#sinceLastLine = 0;
      logger.error({ err }, `${dependency} unreachable: ${reason}; ${paused} paused`);
      return;
    }
    this.#sinceLastLine += 1;
    if (now - this.#lastLine < intervalMs) return;
    const failures = this.#sinceLastLine;
    this.#lastLine = now;
    this.#sinceLastLine = 0;
    logger.error(
      { err, failures, downMs: now - this.#since },
      `${dependency} still unreachable after ${seconds(now - this.#since)}: ${reason}; ${failures} failures since the last line; ${paused} paused`,
    );
  }

  succeeded(): void {
    if (this.#since === undefined) return;
    const downMs = this.#o.now() - this.#since;
    const failures = this.#total;
    this.#since = undefined;
    this.#total = 0;
    this.#o.logger.info(
      { downMs, failures },
      `${this.#o.dependency} reachable again after ${seconds(downMs)} (${failures} failures); ${this.#o.paused} resumed`,
    );
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}
