import { SessionValueError } from '../core/errors.js';

/**
 * Refuses "__proto__" as an attribute name: wherever attributes are held as a plain object (a store's
 * record, a JSON body, a spread), assigning that key sets the object's prototype instead of a field.
 */
export function checkAttributeName(key: string): void {
  if (key === '__proto__') {
    throw new SessionValueError(
      '"__proto__" cannot be a session attribute name: it is the prototype of every object that holds attributes; choose another name',
    );
  }
}

/**
 * What JSON.stringify would turn into something else without a word: NaN and ±Infinity become null,
 * a Map, Set or typed array an empty or index-keyed object. Only the value itself is looked at, not
 * what it contains: a whole walk would cost every commit, and these are what a counter or a cache
 * put straight into a session are.
 */
export function lossyKind(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : String(value);
  if (value instanceof Map) return 'a Map';
  if (value instanceof Set) return 'a Set';
  if (ArrayBuffer.isView(value)) return 'a typed array or Buffer';
  return undefined;
}

/** Refuses a value JSON would store as something else, before it replaces what the session holds. */
export function checkLossless(key: string, value: unknown): void {
  const kind = lossyKind(value);
  if (kind === undefined) return;
  const fix =
    typeof value === 'number'
      ? 'would be stored as null; nothing was written. Store a finite number, or delete the key'
      : 'would be stored as an empty or index-keyed object; nothing was written. Convert it first, e.g. [...map], [...set] or Array.from(bytes)';
  throw new SessionValueError(`session attribute "${key}" cannot be stored: ${kind} is not JSON and ${fix}.`);
}

/**
 * Attribute values travel as JSON text; undefined is not JSON, so it means "delete".
 * `maxSize` is the size budget in bytes of the JSON text (see SessionOptions.maxSize).
 */
export function encodeValue(key: string, value: unknown, maxSize = Number.POSITIVE_INFINITY): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new SessionValueError(
      `session attribute "${key}" cannot be stored: it is not JSON-serialisable (${(err as Error).message}). Store plain objects, arrays, strings, numbers, booleans or null.`,
      { cause: err },
    );
  }
  if (text === undefined) {
    throw new SessionValueError(
      `session attribute "${key}" cannot be stored: ${typeof value} values are not JSON. Use session.delete("${key}") to remove it.`,
    );
  }
  const size = Buffer.byteLength(text, 'utf8');
  if (size > maxSize) {
    throw new SessionValueError(
      `session attribute "${key}" is ${size} bytes as JSON, over the ${maxSize}-byte budget (maxSize); nothing was written. Keep large data elsewhere and store its id, or raise maxSize.`,
    );
  }
  return text;
}

/** Refuses a commit whose new values add up to more than the budget, naming the attribute that crossed it. */
export function checkCommitSize(set: Record<string, string>, maxSize: number): void {
  let total = 0;
  // for…in, not Object.entries: no array per key on every commit.
  for (const key in set) {
    const text = set[key] as string;
    const size = Buffer.byteLength(text, 'utf8');
    total += size;
    if (total > maxSize) {
      throw new SessionValueError(
        `session attribute "${key}" (${size} bytes as JSON) takes this request's session writes to ${total} bytes, over the ${maxSize}-byte budget per commit (maxSize); nothing was written. Keep large data elsewhere and store its id, or raise maxSize.`,
      );
    }
  }
}

export function decodeValue(key: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SessionValueError(
      `session attribute "${key}" holds text that is not JSON; it was not written by shoal or was damaged`,
      { cause: err },
    );
  }
}

/**
 * An attribute's value through the app's `validate` for its key, if any: what session.get() and the
 * gateway's hooks read. The validator may also convert (its result is the value read).
 */
export function validateValue(check: ((value: unknown) => unknown) | undefined, key: string, value: unknown): unknown {
  if (!check) return value;
  try {
    return check(value);
  } catch (err) {
    throw new SessionValueError(`session attribute "${key}" failed validation: ${(err as Error).message}`, {
      cause: err,
    });
  }
}
