import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { ConfigError, SessionValueError } from '../core/errors.js';

export interface EncryptionOptions {
  /** Base64 32-byte AES keys, newest first: the first encrypts, all of them decrypt. CLI nodes: SHOAL_ENCRYPTION_KEYS. */
  keys: string[];
  /**
   * Accept values stored before encryption was turned on (plain JSON) when reading.
   * Default false: a plaintext value is refused, since anyone with write access to the store could plant one.
   */
  allowPlaintext?: boolean;
}

/** Marks an encrypted value; never the start of JSON text, so plaintext and ciphertext cannot be confused. */
const PREFIX = '$e1.';
const HOW_TO = 'Generate a key with `openssl rand -base64 32`';

interface Key {
  id: string;
  secret: Buffer;
}

/**
 * AES-256-GCM for attribute values at rest. A value is stored as
 * `$e1.<key id>.<iv>.<ciphertext+tag>` (base64url parts): the key id lets old
 * keys keep decrypting after a rotation, and the additional authenticated data
 * binds each value to its session id and attribute name, so a value copied
 * into another session or attribute fails to decrypt instead of being served.
 */
export class ValueCipher {
  readonly #keys: Key[];
  readonly #allowPlaintext: boolean;

  constructor(options: EncryptionOptions) {
    if (options.keys.length === 0) {
      throw new ConfigError(
        `encryption is on but no key is configured: set SHOAL_ENCRYPTION_KEYS or encryption.keys. ${HOW_TO}.`,
      );
    }
    this.#keys = options.keys.map((text, i) => {
      const secret = decodeKey(text);
      if (!secret) {
        // Never echo key material: say which entry is wrong and how to make a good one.
        throw new ConfigError(
          `encryption key #${i + 1} is not a base64-encoded 32-byte key. ${HOW_TO} and list keys newest first, comma-separated in SHOAL_ENCRYPTION_KEYS.`,
        );
      }
      return { id: keyId(secret), secret };
    });
    this.#allowPlaintext = options.allowPlaintext ?? false;
  }

  /** Encrypts the JSON text of `attribute` for session `sessionId` with the newest key. */
  encrypt(sessionId: string, attribute: string, text: string): string {
    const key = this.#keys[0] as Key;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.secret, iv);
    cipher.setAAD(aad(sessionId, attribute));
    const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${PREFIX}${key.id}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /** The JSON text of a stored value; SessionValueError when it is not ours to read. */
  decrypt(sessionId: string, attribute: string, stored: string): string {
    if (!stored.startsWith(PREFIX)) {
      if (this.#allowPlaintext) return stored;
      throw new SessionValueError(
        `session attribute "${attribute}" is stored unencrypted while encryption is on; it was written before encryption was enabled or by something other than shoal. Set encryption.allowPlaintext while migrating, or delete the value.`,
      );
    }
    const [kid, iv, body] = stored.slice(PREFIX.length).split('.');
    const key = this.#keys.find((k) => k.id === kid);
    if (!key) {
      throw new SessionValueError(
        `session attribute "${attribute}" was encrypted with a key that is not in the key ring (key id ${kid}); put the old key back at the end of SHOAL_ENCRYPTION_KEYS until every session written with it has expired`,
      );
    }
    const raw = Buffer.from(body ?? '', 'base64url');
    const nonce = Buffer.from(iv ?? '', 'base64url');
    try {
      if (nonce.length !== 12 || raw.length < 16) throw new Error('truncated value');
      const decipher = createDecipheriv('aes-256-gcm', key.secret, nonce);
      decipher.setAAD(aad(sessionId, attribute));
      decipher.setAuthTag(raw.subarray(raw.length - 16));
      return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new SessionValueError(
        `session attribute "${attribute}" could not be decrypted: it was encrypted for another session or attribute, or it was altered in the store; it was not used`,
        { cause: err },
      );
    }
  }
}

/** Standard or URL-safe base64 of exactly 32 bytes, else null. */
function decodeKey(text: string): Buffer | null {
  const clean = text.trim();
  if (!/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(clean)) return null;
  const bytes = Buffer.from(clean.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return bytes.length === 32 ? bytes : null;
}

/** A short public name for a key (derived one way, so it reveals nothing of the key). */
function keyId(secret: Buffer): string {
  return createHash('sha256').update('shoal key id\0').update(secret).digest('base64url').slice(0, 8);
}

function aad(sessionId: string, attribute: string): Buffer {
  return Buffer.from(`${sessionId}\0${attribute}`, 'utf8');
}
