import { lossyKind } from '../session/codec.js';
import type { DropInSession } from './express-session-object.js';

/** The property express-session keeps the cookie under; shoal stores it like any other. */
export const COOKIE = 'cookie';

/** Top-level properties as JSON texts (what express-session hashes): `cookie` and non-JSON values left out. */
export function texts(sess: DropInSession): Map<string, string> {
  const out = new Map<string, string>();
  for (const key of Object.keys(sess)) {
    if (key === COOKIE) continue;
    const text = JSON.stringify(sess[key]);
    if (text !== undefined) out.set(key, text);
  }
  return out;
}

export function withoutCookie(map: Map<string, string>): Map<string, string> {
  const out = new Map(map);
  out.delete(COOKIE);
  return out;
}

/** Same properties with the same JSON, `cookie` aside. */
export function same(current: Map<string, string>, other: Map<string, string>): boolean {
  let count = 0;
  for (const [key, text] of other) {
    if (key === COOKIE) continue;
    if (current.get(key) !== text) return false;
    count++;
  }
  return count === current.size;
}

export function propertyOf(sess: DropInSession, key: string): unknown {
  return key === COOKIE ? sess.cookie.data : sess[key];
}

/**
 * A property as the session stores it. express-session keeps whatever JSON makes of a value (NaN as
 * null, a Map as {}), where shoal's own set() refuses such a value: the drop-in passes JSON's form on.
 */
export function storedForm(sess: DropInSession, key: string, text: string): unknown {
  const value = propertyOf(sess, key);
  return lossyKind(value) === undefined ? value : JSON.parse(text);
}
