/** Why a session cookie was refused. */
export type CookieRejection = 'duplicate' | 'oversized' | 'bad-signature';

/** What a session manager announces, and the arguments each listener receives. */
export interface SessionEventMap {
  /** A session id stopped being valid (destroyed, rotated away, expired), e.g. to close its sockets. */
  revoked: [id: string, reason: string];
  /** A request presented a session cookie that was refused. */
  cookieRejected: [reason: CookieRejection];
}

type Listener<A extends unknown[]> = (...args: A) => void | Promise<void>;

/**
 * A small typed emitter. `on` returns the function that removes the listener, so a gateway that
 * stops (or a test) leaves nothing behind. A failing listener never fails the caller that emitted:
 * it goes to `onListenerError` (the manager logs it).
 */
export class SessionEvents {
  readonly #listeners = new Map<keyof SessionEventMap, Set<Listener<never>>>();
  readonly #onListenerError: (err: unknown, event: keyof SessionEventMap) => void;

  constructor(onListenerError: (err: unknown, event: keyof SessionEventMap) => void = () => {}) {
    this.#onListenerError = onListenerError;
  }

  on<E extends keyof SessionEventMap>(event: E, listener: Listener<SessionEventMap[E]>): () => void {
    const set = this.#listeners.get(event) ?? new Set();
    this.#listeners.set(event, set);
    const entry = listener as Listener<never>;
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  /** Calls every listener of `event` and resolves when all have settled. */
  async emit<E extends keyof SessionEventMap>(event: E, ...args: SessionEventMap[E]): Promise<void> {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    await Promise.all(
      [...set].map(async (listener) => {
        try {
          await (listener as Listener<SessionEventMap[E]>)(...args);
        } catch (err) {
          this.#onListenerError(err, event);
        }
      }),
    );
  }
}
