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
  }
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

/** The message bus could not be reached or answered with an error. */
export class BusUnavailableError extends ShoalError {
  override name = 'BusUnavailableError';
  constructor(bus: string, message: string, options?: { cause?: unknown }) {
    super('ERR_SHOAL_BUS_UNAVAILABLE', `message bus ${bus}: ${message}`, options);
  }
}
