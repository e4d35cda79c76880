import { ConfigError } from '../core/errors.js';

export const DEFAULT_MAX_CONNECTIONS_PER_SESSION = 32;
export const DEFAULT_MAX_CONNECTIONS_PER_USER = 128;

/** Which limit a new connection would go over. */
export type LimitHit = 'session' | 'user';

/**
 * Open connections per session and per user on ONE gateway process: a user can hold up to
 * the limit on every gateway. Entries are removed at zero, so ids of gone sessions and users
 * are not kept.
 */
export class ConnectionLimits {
  readonly #bySession = new Map<string, number>();
  readonly #byUser = new Map<string, number>();

  constructor(
    readonly perSession: number,
    readonly perUser: number,
  ) {
    checkLimit('maxConnectionsPerSession', perSession);
    checkLimit('maxConnectionsPerUser', perUser);
  }

  /** The limit one more connection of this session and user would exceed, or null if it fits. */
  exceeded(sessionId: string | null, userId: string | null): LimitHit | null {
    if (sessionId !== null && (this.#bySession.get(sessionId) ?? 0) >= this.perSession) return 'session';
    if (userId !== null && (this.#byUser.get(userId) ?? 0) >= this.perUser) return 'user';
    return null;
  }

  /** A token connection has no session (null): only its user is counted. */
  add(sessionId: string | null, userId: string | null): void {
    if (sessionId !== null) this.#bySession.set(sessionId, (this.#bySession.get(sessionId) ?? 0) + 1);
    if (userId !== null) this.#byUser.set(userId, (this.#byUser.get(userId) ?? 0) + 1);
  }

  remove(sessionId: string | null, userId: string | null): void {
    if (sessionId !== null) decrement(this.#bySession, sessionId);
    if (userId !== null) decrement(this.#byUser, userId);
  }

  /** Sessions and users that hold at least one connection (0 and 0 once every connection closed). */
  tracked(): { sessions: number; users: number } {
    return { sessions: this.#bySession.size, users: this.#byUser.size };
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}

function checkLimit(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new ConfigError(
      `${name} must be a whole number of connections ≥ 1 (got ${String(value)}); ` +
        'leave it unset for the default, or raise it for apps that open many tabs or streams per user',
    );
  }
}

/**
 * A limit from the environment: unset or empty → undefined (the default applies); anything but
 * a whole number ≥ 1 → ConfigError naming the variable.
 */
export function limitFromEnv(name: string, value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value.trim());
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new ConfigError(
      `${name}=${JSON.stringify(value)} is not a valid connection limit: use a whole number ≥ 1 ` +
        '(per gateway process), or leave it unset for the default',
    );
  }
  return n;
}
