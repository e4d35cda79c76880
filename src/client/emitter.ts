/** Calls app code without letting its exception break the SDK's loop; the error still surfaces, asynchronously. */
export function safeCall<A extends unknown[]>(fn: (...args: A) => void, ...args: A): void {
  try {
    fn(...args);
  } catch (err) {
    const report = (globalThis as { reportError?: (e: unknown) => void }).reportError;
    if (report) report(err);
    else
      setTimeout(() => {
        throw err;
      }, 0);
  }
}

/** A set of listeners per name. */
export class Listeners<M extends { [K in keyof M]: (...args: never[]) => void }> {
  readonly #sets = new Map<keyof M, Set<M[keyof M]>>();

  add<K extends keyof M>(name: K, listener: M[K]): () => void {
    let set = this.#sets.get(name);
    if (!set) {
      set = new Set();
      this.#sets.set(name, set);
    }
    set.add(listener);
    return () => void set.delete(listener);
  }

  emit<K extends keyof M>(name: K, ...args: Parameters<M[K]>): void {
    for (const l of [...(this.#sets.get(name) ?? [])]) safeCall(l as (...a: Parameters<M[K]>) => void, ...args);
  }
}
