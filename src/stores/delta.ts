import { asNumber, type CommitResult, type SessionDelta } from './contract.js';

export interface AppliedDelta {
  /** The attributes after the delta, as own data properties (any name, `__proto__` included, is a plain field). */
  attributes: Record<string, string>;
  userId: string | null;
  /** The value after the commit of every key in `delta.incr`. */
  values: Record<string, string>;
}

/**
 * Applies a delta (del, then set, then incr) to a session's attributes and user: the one
 * reading of SessionDelta for every store that computes the result itself. Works on a Map,
 * because attribute names are user data and a plain object would treat `__proto__` as its prototype.
 */
export function applyDelta(
  attributes: Record<string, string>,
  userId: string | null,
  delta: SessionDelta,
): AppliedDelta | Extract<CommitResult, { status: 'not-a-number' }> {
  const attrs = new Map(Object.entries(attributes));
  for (const key of delta.del ?? []) attrs.delete(key);
  for (const [key, value] of Object.entries(delta.set ?? {})) attrs.set(key, value);
  const values = new Map<string, string>();
  for (const [key, by] of Object.entries(delta.incr ?? {})) {
    const current = asNumber(attrs.get(key));
    // A non-finite sum would be stored as "NaN"/"Infinity", which is not JSON: refuse it as Redis's script does.
    const sum = current === undefined ? Number.NaN : current + by;
    if (!Number.isFinite(sum)) return { status: 'not-a-number', key };
    const next = String(sum);
    attrs.set(key, next);
    values.set(key, next);
  }
  return {
    // fromEntries defines own properties, so "__proto__" stays a field here too.
    attributes: Object.fromEntries(attrs),
    userId: delta.userId === undefined ? userId : delta.userId,
    values: Object.fromEntries(values),
  };
}
