import { SessionValueError } from '../core/errors.js';

/** Attribute values travel as JSON text; undefined is not JSON, so it means "delete". */
export function encodeValue(key: string, value: unknown): string {
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
  return text;
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
