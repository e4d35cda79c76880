export interface BackoffOptions {
  /** First retry window in ms (default 500). */
  base?: number;
  /** Largest retry window in ms (default 30 000). */
  cap?: number;
  /** A connection that stayed open this long (ms, default 10 000) resets the backoff. */
  stableMs?: number;
}

/**
 * Full jitter (AWS architecture blog, "Exponential Backoff and Jitter"): a
 * uniformly random sleep in [0, min(cap, base·2^attempt)). Spreading retries
 * over the whole window is what keeps a restarted gateway from being hit by
 * every client in the same instant.
 */
export function fullJitter(attempt: number, base: number, cap: number, random: () => number = Math.random): number {
  const window = Math.min(cap, base * 2 ** Math.max(0, attempt));
  return Math.floor(random() * window);
}

/** Attempt counter around fullJitter: `next()` for each failure, `reset()` after a stable connection. */
export class Backoff {
  attempt = 0;
  readonly base: number;
  readonly cap: number;
  readonly stableMs: number;

  constructor(
    options: BackoffOptions = {},
    readonly random: () => number = Math.random,
  ) {
    this.base = positive(options.base, 500);
    this.cap = Math.max(this.base, positive(options.cap, 30_000));
    this.stableMs = positive(options.stableMs, 10_000);
  }

  next(): number {
    return fullJitter(this.attempt++, this.base, this.cap, this.random);
  }

  /** A short sleep for "reconnect promptly" (gateway draining): within the first window only. */
  prompt(): number {
    return fullJitter(0, this.base, this.cap, this.random);
  }

  reset(): void {
    this.attempt = 0;
  }
}

function positive(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}
