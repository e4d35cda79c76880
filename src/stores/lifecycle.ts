import { StoreUnavailableError } from '../core/errors.js';
import { type SessionStore, STORE_OPERATIONS } from './contract.js';

const GUARDED = [...STORE_OPERATIONS, 'ping'] as const;

/**
 * The one lifecycle of every store: after close() each method rejects with
 * StoreUnavailableError, and close() runs the driver's close once (a second call resolves).
 */
export function withLifecycle<S extends SessionStore>(store: S): S {
  let closed = false;
  let closing: Promise<void> | undefined;
  const wrapped: S = Object.create(store);
  for (const op of GUARDED) {
    if (typeof store[op] !== 'function') continue; // an optional capability the store lacks stays absent
    const fn = store[op] as (...args: unknown[]) => Promise<unknown>;
    (wrapped as unknown as Record<string, unknown>)[op] = function (this: unknown) {
      if (closed) {
        return Promise.reject(
          new StoreUnavailableError(store.kind, `${op}: this store was closed; open a new one with createStore()`),
        );
      }
      // `arguments` passed straight on, as in instrument.ts: no array per store call.
      // biome-ignore lint/complexity/noArguments: see above
      return fn.apply(store, arguments as unknown as unknown[]);
    };
  }
  wrapped.close = () => {
    closed = true;
    closing ??= store.close();
    return closing;
  };
  return wrapped;
}
