/**
 * How an error message names a value given where another type belongs, without showing the value
 * itself: it may be a secret or a URL with a password in it.
 */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  const type = typeof value;
  return type === 'object' ? 'an object' : `a ${type}`;
}
