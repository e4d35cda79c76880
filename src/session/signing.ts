import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '../core/errors.js';
import { SESSION_ID_PATTERN } from '../core/ids.js';
import { kindOf } from '../core/kind-of.js';

/**
 * Signs session ids with the first secret of a key ring and accepts any
 * secret of the ring, so a secret can be rotated without logging anyone out:
 * prepend the new one, drop the old one after the longest session lifetime.
 */
/** How many verified cookie values to remember: an HMAC per request was a visible share of a session read. */
const VERIFIED_CACHE = 10_000;

/**
 * `secrets` as given from plain JavaScript: a single string would otherwise be read character by
 * character ("a session secret is 1 characters long"). Undefined stands for none.
 */
export function secretList(secrets: unknown): readonly string[] {
  if (secrets === undefined) return [];
  if (Array.isArray(secrets) && secrets.every((s) => typeof s === 'string')) return secrets;
  const got =
    typeof secrets === 'string'
      ? 'one string: wrap it in [ ]'
      : Array.isArray(secrets)
        ? `an array holding ${kindOf(secrets.find((s) => typeof s !== 'string'))}`
        : kindOf(secrets);
  throw new ConfigError(
    `session secrets must be an array of strings, newest first, e.g. secrets: [process.env.SESSION_SECRET]; got ${got}`,
  );
}

export class KeyRing {
  readonly #verified = new Map<string, string>();
  readonly #keys: Buffer[];
  readonly #purpose: string;

  /**
   * `purpose` separates scopes: a value signed for "client" never verifies as a
   * "session" cookie, even though both scopes share the ring and id format.
   */
  constructor(given: readonly string[], purpose = 'session') {
    this.#purpose = purpose;
    const secrets = secretList(given);
    if (secrets.length === 0) {
      throw new ConfigError(
        'no session secret configured: set SHOAL_SECRETS (comma-separated, newest first, each at least 32 characters) or pass `secrets`',
      );
    }
    for (const s of secrets) {
      if (s.length < 32) {
        throw new ConfigError(
          `a session secret is ${s.length} characters long; use at least 32 random characters (e.g. \`openssl rand -base64 48\`)`,
        );
      }
    }
    this.#keys = secrets.map((s) => Buffer.from(s, 'utf8'));
  }

  sign(id: string): string {
    return `${id}.${mac(this.#keys[0] as Buffer, this.#message(id))}`;
  }

  /** The id inside a signed value, or null when the value is malformed or no key of the ring signed it. */
  unsign(value: string): string | null {
    const known = this.#verified.get(value);
    if (known !== undefined) return known;
    const id = this.#verify(value);
    if (id !== null) {
      // Only values that verified are remembered, keyed by the whole signed value: a forged one never hits.
      if (this.#verified.size >= VERIFIED_CACHE) this.#verified.delete(this.#verified.keys().next().value as string);
      this.#verified.set(value, id);
    }
    return id;
  }

  #verify(value: string): string | null {
    const dot = value.indexOf('.');
    if (dot < 0) return null;
    const id = value.slice(0, dot);
    if (!SESSION_ID_PATTERN.test(id)) return null;
    const given = Buffer.from(value.slice(dot + 1), 'utf8');
    for (const key of this.#keys) {
      const expected = Buffer.from(mac(key, this.#message(id)), 'utf8');
      if (expected.length === given.length && timingSafeEqual(expected, given)) return id;
    }
    return null;
  }

  /** The session scope signs the bare id (cookies issued before scopes existed stay valid). */
  #message(id: string): string {
    return this.#purpose === 'session' ? id : `${this.#purpose}\0${id}`;
  }
}

function mac(key: Buffer, id: string): string {
  return createHmac('sha256', key).update(id).digest('base64url');
}
