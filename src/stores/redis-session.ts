import type { SessionMeta, StoredSession } from './contract.js';

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
    createdAt: Number(hash['m:created']),
    lastSeenAt: Number(hash['m:seen']),
    idleDeadline: Number(hash['m:idle']),
    absoluteDeadline: Number(hash['m:abs']),
    userId: hash['m:user'] ?? null,
    rev: Number(hash['m:rev']),
  };
  if (hash['m:client'] !== undefined) meta.client = hash['m:client'];
  return { id, meta, attributes };
}

/** FNV-1a over UTF-16 code units: stable across processes and versions, which bucketing relies on. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
