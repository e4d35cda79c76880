/**
 * Named errors. Every message says what went wrong and what to do about it;
 * the underlying failure travels in `cause`.
 */
export class ShoalError extends Error {
  override name = 'ShoalError';
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    brand(this, new.target);
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class instanceof asks about, a subclass too
    return isBranded(value, this);
  }
}

/**
 * `instanceof` for shoal's errors goes by class name, not object identity. An app compiled to
 * CommonJS (tsx) can load a second copy of shoal's modules beside the one the CLI runs; an error
 * thrown by one copy (a store outage, an RpcError) must still be recognized by the other.
 */
const BRAND = Symbol.for('shoal.error.classes');

/** Records on `error` the names of its class and of every class above it. */
export function brand(error: Error, target: abstract new (...args: never[]) => unknown): void {
  const names: string[] = [];
  for (let c: unknown = target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
    names.push((c as { name: string }).name);
  }
  Object.defineProperty(error, BRAND, { value: names });
}

/** Whether `value` was made by a class named as `ctor` is (in any copy of shoal). */
export function isBranded(value: unknown, ctor: { name: string }): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const names = (value as { [BRAND]?: unknown })[BRAND];
  return Array.isArray(names) && names.includes(ctor.name);
}

/** A configuration value (URL, duration, secret…) is missing or malformed. */
export class ConfigError extends ShoalError {
  override name = 'ConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SHOAL_CONFIG', message, options);
  }
}

/** An optional backend client library (ioredis, pg, …) is not installed. */
export class MissingDependencyError extends ShoalError {
  override name = 'MissingDependencyError';
  constructor(pkg: string, feature: string, options?: { cause?: unknown }) {
    super(
      'ERR_SHOAL_MISSING_DEPENDENCY',
      `${feature} needs the package "${pkg}", which is not installed. Run: npm install ${pkg}`,
      options,
    );
  }
}

/** The session store could not be reached or answered with an error. */
export class StoreUnavailableError extends ShoalError {
  override name = 'StoreUnavailableError';
  /** 503, as http-errors names it: Express's default handler and typical app error handlers answer with it. */
  readonly status = 503;
  readonly statusCode = 503;
  /** A server error: the message (a backend's address, timings) is not for the client (http-errors' rule for 5xx). */
  readonly expose = false;
  /** Headers Express's default handler (finalhandler) sets on the answer: the client may retry soon. */
  readonly headers: Readonly<Record<string, string>> = { 'Retry-After': '1' };
  constructor(store: string, message: string, options?: { cause?: unknown }) {
    super('ERR_SHOAL_STORE_UNAVAILABLE', `session store ${store}: ${message}`, options);
  }
}

/** `session.update()` could not win its compare-and-swap within the allowed retries. */
export class ConflictError extends ShoalError {
  override name = 'ConflictError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SHOAL_CONFLICT', message, options);
  }
}

/** A value cannot be stored: not JSON-serialisable, not a number for increment, over the size budget… */
export class SessionValueError extends ShoalError {
  override name = 'SessionValueError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SHOAL_SESSION_VALUE', message, options);
  }
}

/** The session was destroyed, rotated away or expired while the request was using it. */
export class SessionGoneError extends ShoalError {
  override name = 'SessionGoneError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SHOAL_SESSION_GONE', message, options);
  }
}

/** `session.lock()` could not acquire the lock within its wait budget. */
export class LockTimeoutError extends ShoalError {
  override name = 'LockTimeoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SHOAL_LOCK_TIMEOUT', message, options);
  }
}

/**
 * What a failed publish did: `'not-published'`, it was not stored and sending it again is safe (the
 * bus was not connected, or refused it); `'unknown'`, it was sent and no answer came in time, so it
 * may still be stored and delivered later, and a retry may deliver it twice.
 */
export type PublishOutcome = 'unknown' | 'not-published';

/** What a 503 for a failed bus call says, by what a failed publish did (web nodes and gateways alike). */
export function busFailureMessage(outcome: PublishOutcome | undefined): string {
  switch (outcome) {
    case 'unknown':
      return 'The message was sent and the bus did not confirm it: it may still be delivered, and sending it again may deliver it twice.';
    case 'not-published':
      return 'The message bus is unavailable and the message was not published; sending it again after Retry-After is safe.';
    default:
      return 'The message bus is unavailable. Retry shortly.';
  }
}

/** The message bus could not be reached or answered with an error. */
export class BusUnavailableError extends ShoalError {
  override name = 'BusUnavailableError';
  /** 503, as http-errors names it: Express's default handler and typical app error handlers answer with it. */
  readonly status = 503;
  readonly statusCode = 503;
  /** A server error: the message (a backend's address, timings) is not for the client (http-errors' rule for 5xx). */
  readonly expose = false;
  /** Headers Express's default handler (finalhandler) sets on the answer: the client may retry soon. */
  readonly headers: Readonly<Record<string, string>> = { 'Retry-After': '1' };
  /**
   * Set when a publish failed (`bus.publish`, `realtime.to(…).send(…)`): whether the message may
   * still be delivered. Unset for other calls (read, subscribe, ping).
   */
  readonly outcome: PublishOutcome | undefined;
  constructor(bus: string, message: string, options?: { cause?: unknown; outcome?: PublishOutcome }) {
    super('ERR_SHOAL_BUS_UNAVAILABLE', `message bus ${bus}: ${message}`, options);
    this.outcome = options?.outcome;
  }
}
