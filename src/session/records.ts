import { SessionGoneError } from '../core/errors.js';
import type { LifetimeChange, StoredSession } from '../stores/contract.js';
import type { NearCacheEntry } from './near-cache.js';
import type { SessionContext, SessionServices } from './options.js';

/**
 * The one way the session layer reads and creates stored sessions, so a Session, the manager
 * (gateways, admin tools) and the express-session drop-in agree on the near cache and encryption.
 */
export interface LoadedRecord {
  /** Meta is the caller's own copy (commits update its rev); the attributes may be shared and frozen. */
  record: StoredSession;
  /** The near-cache entry the attributes belong to (it memoises their decrypted texts), if any. */
  entry: NearCacheEntry | null;
}

/**
 * The live session from the store, through the near cache when there is one. Not an async
 * function: a session read is one store call and one plain handler, no async frame around them.
 */
export function fetchRecord(s: SessionServices, id: string): Promise<LoadedRecord | null> {
  const now = Date.now();
  try {
    if (!s.nearCache) return s.store.load(id, now).then(storeRecord);
    return s.nearCache.load(id, now).then(cachedRecord);
  } catch (err) {
    // A store of the app's own that throws instead of rejecting fails the read all the same.
    return Promise.reject(err);
  }
}

function storeRecord(record: StoredSession | null): LoadedRecord | null {
  return record ? { record, entry: null } : null;
}

function cachedRecord(loaded: LoadedRecord | null): LoadedRecord | null {
  return loaded ? { record: { ...loaded.record, meta: { ...loaded.record.meta } }, entry: loaded.entry } : null;
}

/** A stored attribute as JSON text (decrypted when encryption is on). */
export function plainValue(s: SessionServices, loaded: LoadedRecord, key: string): string | undefined {
  const { record, entry } = loaded;
  // Own keys only: "toString" or "__proto__" on a session without them is absent, not Object's.
  const stored = Object.hasOwn(record.attributes, key) ? record.attributes[key] : undefined;
  const cipher = s.cipher;
  if (stored === undefined || !cipher) return stored;
  const decrypt = () => cipher.decrypt(record.id, key, stored);
  return entry && s.nearCache && record.attributes === entry.attributes
    ? s.nearCache.decrypted(entry, key, decrypt)
    : decrypt();
}

/** The record with every attribute as JSON text (what gateways and admin tools read). */
export function plainRecord(s: SessionServices, loaded: LoadedRecord): StoredSession {
  if (!s.cipher) return loaded.record;
  const attributes: Record<string, string> = {};
  for (const key of Object.keys(loaded.record.attributes)) attributes[key] = plainValue(s, loaded, key) as string;
  return { ...loaded.record, attributes };
}

/** JSON texts → what the store keeps for session `id` (encrypted values are bound to their id). */
export function sealValues(s: SessionServices, id: string, texts: Record<string, string>): Record<string, string> {
  const cipher = s.cipher;
  if (!cipher) return texts;
  const out: Record<string, string> = {};
  for (const [key, text] of Object.entries(texts)) out[key] = cipher.encrypt(id, key, text);
  return out;
}

/**
 * Stores a brand-new session under `id` (never an id a cookie brought: the caller generated it).
 * `attributes` are JSON texts. The near cache keeps it, so the request's next read is a rev check.
 * `lifetime`: the session's own (setLifetime, or carried over by a rotation), else the manager's timeouts.
 */
export async function createRecord(
  ctx: SessionContext,
  id: string,
  attributes: Record<string, string>,
  userId: string | null,
  client: string | undefined,
  lifetime?: LifetimeChange,
): Promise<LoadedRecord> {
  const created = await insertRecord(ctx, id, attributes, userId, client, lifetime);
  if (!created) {
    throw new SessionGoneError(
      'a freshly generated session id already exists in the store; the random source is broken',
    );
  }
  return created;
}

/**
 * createRecord() for an id that other requests may create at the same moment (a session moved
 * from an express-session store, whose id is derived from the old one): null when the id is
 * already taken, live or ended.
 */
export async function insertRecord(
  ctx: SessionContext,
  id: string,
  attributes: Record<string, string>,
  userId: string | null,
  client: string | undefined,
  lifetime?: LifetimeChange,
): Promise<LoadedRecord | null> {
  const now = Date.now();
  const { config, services } = ctx;
  const idleMs = lifetime?.idleMs ?? undefined;
  const record: StoredSession = {
    id,
    meta: {
      createdAt: now,
      lastSeenAt: now,
      idleDeadline: now + (idleMs ?? config.idleMs),
      absoluteDeadline: now + (lifetime ? lifetime.absoluteMs : config.absoluteMs),
      userId,
      rev: 1,
      client,
    },
    attributes: sealValues(services, id, attributes),
  };
  if (idleMs !== undefined) record.meta.idleMs = idleMs;
  if (!(await services.store.create(record))) return null;
  const entry = services.nearCache?.created(record) ?? null;
  // The caller keeps its own meta (commits update its rev) and shares the cached attributes.
  return { record: entry ? { ...record, meta: { ...record.meta }, attributes: entry.attributes } : record, entry };
}
