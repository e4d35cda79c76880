import { RealtimeError } from './types.js';

/**
 * The connection token of a client that holds no cookie: the one it was given, and new ones from
 * the app's `getToken()` when that one is about to expire. Reads `exp` from the token's payload
 * without verifying it (the gateway verifies; this only decides when to ask for a new one).
 */
export class TokenKeeper {
  #token: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #fetching: Promise<string> | undefined;

  constructor(
    token: string | undefined,
    readonly getToken: (() => Promise<string>) | undefined,
  ) {
    this.#token = token;
  }

  /** Whether a token the gateway refuses as expired (4411) can be replaced. */
  /** The newest token (what POST /request carries), if any. */
  get current(): string | undefined {
    return this.#token;
  }

  get renewable(): boolean {
    return this.getToken !== undefined;
  }

  /** The token to connect with: the held one while it has 5 s or more left, else a new one. */
  async forConnect(): Promise<string | undefined> {
    const exp = this.#token === undefined ? undefined : expiryOf(this.#token);
    if (this.#token !== undefined && (exp === undefined || exp - Date.now() >= 5000)) return this.#token;
    if (!this.getToken) return this.#token;
    return this.renew();
  }

  /** A new token from `getToken()` (one call at a time; callers in the meantime share it). */
  renew(): Promise<string> {
    const get = this.getToken;
    if (!get) return Promise.reject(new TypeError('no getToken option to renew the token with'));
    this.#fetching ??= Promise.resolve()
      .then(get)
      .then((token) => {
        if (typeof token !== 'string' || token === '') throw new TypeError('getToken() must resolve to a token string');
        this.#token = token;
        return token;
      })
      .finally(() => {
        this.#fetching = undefined;
      });
    return this.#fetching;
  }

  /** Forgets the held token: the next connect asks `getToken()`. */
  drop(): void {
    this.#token = undefined;
  }

  /**
   * Calls `refresh` ahead of `expires` (seconds since the epoch): a quarter of the remaining
   * lifetime early, at most 30 s, so a short test token and an hour-long one both refresh in time.
   */
  schedule(expires: number, refresh: () => void): void {
    this.stop();
    if (!this.getToken) return;
    const left = expires * 1000 - Date.now();
    const delay = Math.max(0, left - Math.min(30_000, left / 4));
    this.#timer = setTimeout(refresh, Math.min(delay, 2 ** 31 - 1));
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** A JWT's `exp` in ms, or undefined when it cannot be read. */
export function expiryOf(token: string): number | undefined {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export function tokenError(err: unknown): RealtimeError {
  return new RealtimeError('ERR_SHOAL_TOKEN', `getToken() failed: ${String(err)}`, undefined, { cause: err });
}
