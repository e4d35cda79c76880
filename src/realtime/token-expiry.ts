import type { Connection } from './connection.js';

/** setTimeout's longest delay; a later expiry is re-armed when this one fires. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * One timer per connection opened with a token: when the token's `exp` passes and no `refresh`
 * moved it, `expired` runs (which closes the connection with 4411).
 */
export class TokenExpiry {
  readonly #timers = new Map<Connection, NodeJS.Timeout>();

  constructor(readonly expired: (c: Connection) => void) {}

  /** (Re)arms the connection's timer from its identity's `expiresAt`; nothing without one. */
  schedule(c: Connection): void {
    this.cancel(c);
    const at = c.identity.expiresAt;
    if (at === null || c.closed) return;
    const delay = at - Date.now();
    const timer = setTimeout(
      () => {
        this.#timers.delete(c);
        if (c.identity.expiresAt !== null && c.identity.expiresAt <= Date.now()) this.expired(c);
        else this.schedule(c);
      },
      Math.max(0, Math.min(delay, MAX_DELAY)),
    );
    timer.unref();
    this.#timers.set(c, timer);
  }

  cancel(c: Connection): void {
    const timer = this.#timers.get(c);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#timers.delete(c);
  }
}
