/**
 * What `work()` resolves to, or a rejection "no answer within <statedMs> ms" once `ms`
 * have passed, whichever comes first; the timer never outlives the race. A driver's own
 * timeouts do not cover everything (a connection still being made, an offline queue), so
 * every backend call is raced against one of these.
 */
export async function withDeadline<T>(work: () => Promise<T>, ms: number, statedMs: number = ms): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${statedMs} ms`)), ms);
  });
  try {
    return await Promise.race([work(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
