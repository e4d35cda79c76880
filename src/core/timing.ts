/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * "Full jitter" backoff: a random wait between 0 and min(capMs, baseMs · 2^attempt), so
 * retrying contenders spread out instead of colliding again in lockstep.
 */
export function fullJitter(capMs: number, attempt: number, baseMs = 1): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

/** Waits for `work` but no longer than `ms`: for shutdowns that must not hang on a dead peer. Never rejects. */
export async function settleWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    await Promise.race([work.then(() => undefined), timeout]).catch(() => undefined);
  } finally {
    clearTimeout(timer);
  }
}
