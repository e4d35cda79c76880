import { ConfigError } from '../core/errors.js';
import { decodeValue, validateValue } from './codec.js';
import { type SessionManager, sessionContext } from './manager.js';
import type { SessionContext } from './options.js';
import { fetchRecord, type LoadedRecord, plainValue } from './records.js';

/**
 * A live session as code outside a request reads it (the gateways' `authorize` and
 * `connectionInfo`): its user, and its attributes as the values `session.get()` returns.
 */
export interface SessionValues {
  readonly id: string;
  readonly userId: string | null;
  readonly attributes: Readonly<Record<string, unknown>>;
}

/** The attributes of a connection without a session (a token, the connect proxy): none, and none can be added. */
export const NO_ATTRIBUTES: Readonly<Record<string, unknown>> = Object.freeze(Object.create(null));

/** A manager made by another copy of shoal has no context here: the gateway could not decode its sessions. */
export function checkReadable(manager: SessionManager): void {
  if (sessionContext(manager) === undefined) {
    throw new ConfigError(
      'sessions must be a SessionManager made by the same copy of shoal as the gateway (defineSession() or new SessionManager() from it)',
    );
  }
}

/** The live session `id` with its attributes as values, or null when there is none. */
export async function loadSessionValues(manager: SessionManager, id: string): Promise<SessionValues | null> {
  const context = sessionContext(manager);
  const loaded = await fetchRecord(context.services, id);
  if (!loaded) return null;
  return { id: loaded.record.id, userId: loaded.record.meta.userId, attributes: attributeValues(context, loaded) };
}

/**
 * The record's attributes, each decrypted, parsed and validated as session.get() does it, on its first
 * read and once: a handshake pays for the attributes its hooks read (making the view is two objects,
 * whatever the session holds), and a value that cannot be read (damaged, altered in the store, refused
 * by `validate`) throws SessionValueError where it is read rather than failing the whole load, so it only
 * matters to a hook that reads it. A name the session does not hold (`constructor`, `toString`
 * included) reads as undefined; nothing can be written.
 */
function attributeValues(context: SessionContext, loaded: LoadedRecord): Readonly<Record<string, unknown>> {
  return new Proxy(Object.create(null) as Record<string, unknown>, new AttributeValues(context, loaded));
}

class AttributeValues implements ProxyHandler<Record<string, unknown>> {
  readonly #context: SessionContext;
  readonly #loaded: LoadedRecord;
  readonly #stored: Record<string, string>;
  readonly #read = new Map<string, unknown>();

  constructor(context: SessionContext, loaded: LoadedRecord) {
    this.#context = context;
    this.#loaded = loaded;
    this.#stored = loaded.record.attributes;
  }

  #holds(key: string | symbol): key is string {
    return typeof key === 'string' && Object.hasOwn(this.#stored, key);
  }

  #value(key: string): unknown {
    const read = this.#read;
    if (read.has(key)) return read.get(key);
    const { services, config } = this.#context;
    const text = plainValue(services, this.#loaded, key) as string;
    const value = validateValue(config.validate[key], key, decodeValue(key, text));
    read.set(key, value);
    return value;
  }

  get(_target: Record<string, unknown>, key: string | symbol): unknown {
    return this.#holds(key) ? this.#value(key) : undefined;
  }

  has(_target: Record<string, unknown>, key: string | symbol): boolean {
    return this.#holds(key);
  }

  ownKeys(): string[] {
    return Object.keys(this.#stored);
  }

  getOwnPropertyDescriptor(_target: Record<string, unknown>, key: string | symbol): PropertyDescriptor | undefined {
    if (!this.#holds(key)) return undefined;
    // An accessor, so listing the keys (Object.keys, `in`) decodes nothing; configurable, as the
    // (empty, extensible) proxy target requires of a property it does not have.
    return { get: () => this.#value(key), enumerable: true, configurable: true };
  }

  set(): boolean {
    return false;
  }

  defineProperty(): boolean {
    return false;
  }

  deleteProperty(): boolean {
    return false;
  }
}
