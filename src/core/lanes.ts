/**
 * Per-key lanes: tasks given the same key run one after another, in the order given, and a failed
 * task does not hold up the next; different keys run side by side. A key is forgotten once its
 * lane is empty, so the map holds only keys with work in flight.
 *
 * A task learns whether it waited behind another (`queued`): what it checked when it was given may
 * have changed meanwhile (a connection that broke while it waited).
 */
export function keyedLanes<K>(): <T>(key: K, task: (queued: boolean) => Promise<T>) => Promise<T> {
  const tails = new Map<K, Promise<void>>();
  return <T>(key: K, task: (queued: boolean) => Promise<T>): Promise<T> => {
    const prev = tails.get(key);
    // An idle lane starts the task now, not a tick later.
    const run = prev ? prev.then(() => task(true)) : startNow(task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return run;
  };
}

function startNow<T>(task: (queued: boolean) => Promise<T>): Promise<T> {
  try {
    return task(false);
  } catch (err) {
    return Promise.reject(err);
  }
}
