export interface EventuallyOptions {
  /** How long to keep trying; default 5000 ms. */
  timeoutMs?: number;
  /** Pause between tries; default 5 ms. */
  intervalMs?: number;
  /** Says what was awaited, in the timeout error (a function is read at the timeout, with the state then). */
  message?: string | (() => string);
}

/**
 * Retries `check` until it passes: it returns anything but `false` without throwing. On timeout it
 * THROWS, naming what was awaited and the last failure, so a wait can never be ignored by mistake.
 * Resolves to what the passing try returned.
 */
export async function eventually<T>(
  check: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 5, message }: EventuallyOptions = {},
): Promise<Exclude<T, false>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const result = await check();
      if (result !== false) return result as Exclude<T, false>;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) break;
    await new Promise<void>((resolve) => setTimeout(resolve, intervalMs));
  }
  const what = typeof message === 'function' ? message() : (message ?? 'the condition');
  const reason = last instanceof Error ? `: ${last.message}` : ' (it stayed false)';
  throw new Error(`${what} did not hold within ${timeoutMs} ms${reason}`, { cause: last });
}
