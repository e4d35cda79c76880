import { ConfigError } from './errors.js';

/** Levenshtein distance, for "did you mean": names are short, so the quadratic table is nothing. */
export function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + cost);
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

/**
 * The known name closest to `name` (case aside), when it is close enough to be a typo of it: at most
 * two edits, and fewer than the name has characters.
 */
export function nearestName(name: string, known: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance > 2 || distance >= name.length) continue;
    if (!best || distance < best.distance) best = { name: candidate, distance };
  }
  return best?.name;
}

/** The keys an options object takes: `true` for a value, or the keys of a nested options object. */
export type KeyShape = { readonly [key: string]: true | KeyShape };

/**
 * Refuses keys of an options object that are not options: plain JavaScript (and a spread in
 * TypeScript) passes `idleTimout` without a word, and the setting it meant silently keeps its
 * default. Nested options objects are checked by their own shape. `where` prefixes the key in the
 * message: "session." gives "unknown option session.idleTimout; did you mean idleTimeout?".
 */
export function checkKnownKeys(given: unknown, shape: KeyShape, where = ''): void {
  const unknown: Array<{ key: string; near: string | undefined; known: string[] }> = [];
  collectUnknown(given, shape, where, unknown);
  const [first] = unknown;
  if (!first) return;
  if (unknown.length === 1) {
    throw new ConfigError(
      `unknown option ${first.key}; ${first.near ? `did you mean ${first.near}?` : `the options are ${first.known.join(', ')}`}`,
    );
  }
  throw new ConfigError(
    `unknown options ${unknown.map((u) => `${u.key}${u.near ? ` (did you mean ${u.near}?)` : ''}`).join(', ')}`,
  );
}

function collectUnknown(
  given: unknown,
  shape: KeyShape,
  where: string,
  out: Array<{ key: string; near: string | undefined; known: string[] }>,
): void {
  // Not an object (a wrong type): the option's own check says what to pass.
  if (typeof given !== 'object' || given === null || Array.isArray(given)) return;
  const known = Object.keys(shape);
  for (const [key, value] of Object.entries(given)) {
    const nested = Object.hasOwn(shape, key) ? shape[key] : undefined;
    if (nested === undefined) out.push({ key: `${where}${key}`, near: nearestName(key, known), known });
    else if (nested !== true) collectUnknown(value, nested, `${where}${key}.`, out);
  }
}
