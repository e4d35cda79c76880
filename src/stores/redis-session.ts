import type { CommitOptions, CommitResult, SessionDelta, SessionMeta, StoredSession } from './contract.js';

/**
 * The Redis session hash: attributes in fields `a:<name>`, meta in `m:<name>`, so no
 * attribute name can collide with a meta field.
 */

/** An HGETALL reply as a Lua script returns it (field, value, field, value, …) as a hash. */
export function pairsToHash(flat: readonly (string | number)[]): Record<string, string> {
  const hash: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) hash[String(flat[i])] = String(flat[i + 1]);
  return hash;
}

/** Rebuilds a session from its hash fields; null when the hash is missing or incomplete. */
export function parseSession(id: string, hash: Record<string, string>): StoredSession | null {
  if (hash['m:rev'] === undefined) return null;
  // A plain loop, not entries/flatMap/fromEntries: this runs on every session read. defineProperty
  // for "__proto__" keeps an attribute of that name an own field rather than the prototype.
  const attributes: Record<string, string> = {};
  for (const f in hash) {
    if (!f.startsWith('a:')) continue;
    const name = f.slice(2);
    const value = hash[f] as string;
    if (name === '__proto__')
      Object.defineProperty(attributes, name, { value, enumerable: true, writable: true, configurable: true });
    else attributes[name] = value;
  }
  const meta: SessionMeta = {
    createdAt: storedNumber(hash['m:created']),
    lastSeenAt: storedNumber(hash['m:seen']),
    idleDeadline: storedNumber(hash['m:idle']),
    absoluteDeadline: storedNumber(hash['m:abs']),
    userId: hash['m:user'] ?? null,
    rev: storedNumber(hash['m:rev']),
  };
  if (hash['m:client'] !== undefined) meta.client = hash['m:client'];
  // A session's own idle length (setLifetime); hashes written by earlier versions have none.
  if (hash['m:life'] !== undefined) meta.idleMs = storedNumber(hash['m:life']);
  return { id, meta, attributes };
}

/**
 * A time or revision as the scripts store it: decimal digits, read in a loop. Number() on a string
 * just read off the socket takes V8's general string-to-double path, ~650 instructions, and a session
 * read converts five. Anything but up to 15 digits (always exact in a double) goes through Number().
 */
export function storedNumber(text: string | undefined): number {
  if (text === undefined) return Number.NaN;
  const length = text.length;
  if (length === 0 || length > 15) return Number(text);
  let value = 0;
  for (let i = 0; i < length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return Number(text);
    value = value * 10 + digit;
  }
  return value;
}

/** FNV-1a over UTF-16 code units: stable across processes and versions, which bucketing relies on. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * ARGV of the COMMIT script: id, now, idleDeadline, expectedRev|'', userMode, userId, graceMs, lifeMode,
 * idleMs, absoluteMs, the three counts, then del fields, set field/value pairs, incr field/amount pairs.
 * One array, filled in place.
 */
export function commitArgs(
  id: string,
  delta: SessionDelta,
  options: CommitOptions,
  graceMs: number,
): (string | number)[] {
  const userMode = delta.userId === undefined ? '' : delta.userId === null ? 'clear' : 'set';
  const life = delta.lifetime;
  const args: (string | number)[] = [
    id,
    options.now,
    options.idleDeadline,
    options.expectedRev ?? '',
    userMode,
    delta.userId ?? '',
    graceMs,
    life === undefined ? '' : life.idleMs === null ? 'clear' : 'set',
    life?.idleMs ?? '',
    life?.absoluteMs ?? '',
    0,
    0,
    0,
  ];
  const counts = 10;
  if (delta.del) for (const k of delta.del) args.push(`a:${k}`);
  args[counts] = args.length - counts - 3;
  const setStart = args.length;
  if (delta.set) for (const k in delta.set) args.push(`a:${k}`, delta.set[k] as string);
  args[counts + 1] = (args.length - setStart) / 2;
  const incrStart = args.length;
  if (delta.incr) for (const k in delta.incr) args.push(`a:${k}`, String(delta.incr[k]));
  args[counts + 2] = (args.length - incrStart) / 2;
  return args;
}

/** A COMMIT reply that refused: the session is gone, the revision moved, or an increment hit a non-number. */
export function commitRefusal(reply: (string | number)[]): CommitResult | undefined {
  switch (reply[0]) {
    case 'gone':
      return { status: 'gone' };
    case 'conflict':
      return { status: 'conflict', rev: Number(reply[1]) };
    case 'not-a-number':
      return { status: 'not-a-number', key: String(reply[1]).slice(2) };
  }
  return undefined;
}

/**
 * An 'ok' COMMIT reply: 'ok', rev, absoluteDeadline, the user after a lifetime change ('' otherwise),
 * then the incremented fields and their values.
 */
export function commitSuccess(reply: (string | number)[]): CommitResult {
  const values: Record<string, string> = {};
  for (let i = 4; i + 1 < reply.length; i += 2) values[String(reply[i]).slice(2)] = String(reply[i + 1]);
  return { status: 'ok', rev: Number(reply[1]), values };
}

/** A COMMIT reply as the store answers it: the refusal, or the success. */
export function commitOutcome(reply: unknown): CommitResult {
  const r = reply as (string | number)[];
  return commitRefusal(r) ?? commitSuccess(r);
}
