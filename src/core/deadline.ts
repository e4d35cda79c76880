/**
 * What `work()` resolves to, or a rejection "no answer within <statedMs> ms" once `ms`
 * have passed, whichever comes first; the timer never outlives the race. A driver's own
 * timeouts do not cover everything (a connection still being made, an offline queue), so
 * every backend call is raced against one of these.
 *
 * One promise and one timer per call, no Promise.race: every session request makes a
 * store call through here.
 */
export function withDeadline<T>(work: () => Promise<T>, ms: number, statedMs: number = ms): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${statedMs} ms`)), ms);
    let pending: Promise<T>;
    try {
      pending = work();
    } catch (err) {
      clearTimeout(timer);
      reject(err);
      return;
    }
    pending.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}
