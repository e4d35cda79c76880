import { ConfigError } from '../core/errors.js';
import type { ConditionalLoad, SessionDelta, SessionStore, StoredSession } from '../stores/contract.js';

export interface NearCacheOptions {
  /** Sessions kept at most (least recently used go first). Default 10 000. */
  maxEntries?: number;
  /**
   * Characters of attribute names and values kept at most, as stored (JSON text, or ciphertext
   * plus the decrypted text of attributes read so far when encryption is on). Default 64 MiB.
   * A session larger than a quarter of this is never kept: it would push out most of the others.
   */
  maxBytes?: number;
}

/** How one read went: rev matched (attributes served from memory), rev differed, nothing cached, session ended. */
export type NearCacheRead = 'hit' | 'changed' | 'absent' | 'gone';

/** One session's attributes at one rev. Never changed once made: a commit replaces the entry. */
export interface NearCacheEntry {
  readonly id: string;
  readonly rev: number;
  readonly attributes: Readonly<Record<string, string>>;
  /** Decrypted text of the attributes read so far (encryption on): the same for every request at this rev. */
  readonly plain: Map<string, string>;
  bytes: number;
}

export interface NearCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  changed: number;
  absent: number;
  gone: number;
  evictions: number;
}

type RevCheckingStore = SessionStore & Required<Pick<SessionStore, 'loadIfChanged'>>;

const DEFAULT_MAX_ENTRIES = 10_000;
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Per-process LRU of the last loaded attributes of each session, keyed by id. It never answers
 * alone: every read still asks the store, in one round trip, whether the rev moved
 * (loadIfChanged), and serves the kept attributes only when it did not. A commit that returned,
 * on any node, has bumped the rev in the store, so the next read anywhere sees it: the cache
 * saves the transfer and parsing of unchanged attributes, never the freshness check.
 */
export class NearCache {
  readonly #store: RevCheckingStore;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #maxEntryBytes: number;
  readonly #onRead: (read: NearCacheRead) => void;
  /** Map order is recency order: a use moves the entry to the end, eviction takes from the front. */
  readonly #entries = new Map<string, NearCacheEntry>();
  #bytes = 0;
  readonly #counts = { hit: 0, changed: 0, absent: 0, gone: 0, evictions: 0 };

  constructor(store: RevCheckingStore, options: NearCacheOptions, onRead: (read: NearCacheRead) => void = () => {}) {
    this.#store = store;
    this.#maxEntries = positiveInteger(options.maxEntries ?? DEFAULT_MAX_ENTRIES, 'nearCache.maxEntries');
    this.#maxBytes = positiveInteger(options.maxBytes ?? DEFAULT_MAX_BYTES, 'nearCache.maxBytes');
    this.#maxEntryBytes = Math.floor(this.#maxBytes / 4);
    this.#onRead = onRead;
  }

  get stats(): NearCacheStats {
    const { hit, ...rest } = this.#counts;
    return { entries: this.#entries.size, bytes: this.#bytes, hits: hit, ...rest };
  }

  /**
   * The live session from the store, with the cached attributes when the store says the rev is
   * the cached one. `entry` is what the record's attributes belong to (null when not kept).
   */
  async load(id: string, now: number): Promise<{ record: StoredSession; entry: NearCacheEntry | null } | null> {
    const cached = this.#use(id);
    if (!cached) {
      this.#count('absent');
      const record = await this.#store.load(id, now);
      return record ? this.#fromStore(record) : null;
    }
    const answer: ConditionalLoad | null = await this.#store.loadIfChanged(id, now, cached.rev);
    if (answer === null) {
      this.#count('gone');
      this.drop(id);
      return null;
    }
    if (answer.status === 'changed') {
      this.#count('changed');
      return this.#fromStore(answer.session);
    }
    this.#count('hit');
    // `cached` as it was when asked (a commit on this node may have replaced the entry since):
    // its rev is the one the store just confirmed.
    const attributes = cached.attributes as Record<string, string>;
    return { record: { id, meta: answer.meta, attributes }, entry: cached };
  }

  /** Keeps a session this node has just created (the store holds exactly this at its rev). */
  created(record: StoredSession): NearCacheEntry | null {
    return this.#keep(record.id, record.meta.rev, record.attributes);
  }

  /**
   * A commit from this node returned `rev`. When the cached entry is the state just before it
   * (rev - 1: commits are atomic and bump rev by exactly 1), the delta applied to it is exactly
   * the stored state at `rev`, so the entry moves forward; otherwise it is dropped.
   * `delta` is what the store received (encrypted values included); `values` are the incr results.
   */
  committed(id: string, rev: number, delta: SessionDelta, values: Record<string, string>): void {
    const e = this.#entries.get(id);
    if (!e || e.rev >= rev) return;
    if (e.rev !== rev - 1) {
      this.drop(id);
      return;
    }
    const attributes: Record<string, string> = { ...e.attributes };
    const plain = new Map(e.plain);
    for (const key of delta.del ?? []) {
      delete attributes[key];
      plain.delete(key);
    }
    for (const [key, text] of [...Object.entries(delta.set ?? {}), ...Object.entries(values)]) {
      attributes[key] = text;
      plain.delete(key);
    }
    this.#keep(id, rev, attributes, plain);
  }

  /** Forgets a session (destroyed, rotated away, ended). */
  drop(id: string): void {
    const e = this.#entries.get(id);
    if (!e) return;
    this.#entries.delete(id);
    this.#bytes -= e.bytes;
  }

  /** The decrypted text of one attribute of `entry`, decrypting once per rev and process. */
  decrypted(entry: NearCacheEntry, key: string, decrypt: () => string): string {
    const known = entry.plain.get(key);
    if (known !== undefined) return known;
    const text = decrypt();
    const size = key.length + text.length;
    // Only a current entry grows (a replaced one is no longer counted), and never past the per-entry bound.
    if (this.#entries.get(entry.id) === entry && entry.bytes + size <= this.#maxEntryBytes) {
      entry.plain.set(key, text);
      entry.bytes += size;
      this.#bytes += size;
      this.#evict();
    }
    return text;
  }

  #fromStore(record: StoredSession): { record: StoredSession; entry: NearCacheEntry | null } {
    const entry = this.#keep(record.id, record.meta.rev, record.attributes);
    // Share the entry's attributes so the decrypted texts kept with it apply to this request too.
    return entry && entry.rev === record.meta.rev
      ? { record: { ...record, attributes: entry.attributes as Record<string, string> }, entry }
      : { record, entry: null };
  }

  /** Stores (id, rev, attributes) unless a newer rev is already kept; returns the entry now kept for that rev. */
  #keep(
    id: string,
    rev: number,
    attributes: Record<string, string>,
    plain = new Map<string, string>(),
  ): NearCacheEntry | null {
    const existing = this.#entries.get(id);
    // Loads finish in any order: an older answer never replaces a newer one.
    if (existing && existing.rev >= rev) return existing.rev === rev ? existing : null;
    let bytes = 0;
    for (const [key, text] of Object.entries(attributes)) bytes += key.length + text.length;
    for (const [key, text] of plain) bytes += key.length + text.length;
    if (bytes > this.#maxEntryBytes) {
      this.drop(id); // whatever was kept is older than this rev
      return null;
    }
    this.drop(id);
    // A copy, frozen: requests share it, and nothing may change it behind the rev's back.
    const entry: NearCacheEntry = { id, rev, attributes: Object.freeze({ ...attributes }), plain, bytes };
    this.#entries.set(id, entry);
    this.#bytes += bytes;
    this.#evict();
    return this.#entries.get(id) === entry ? entry : null;
  }

  #use(id: string): NearCacheEntry | undefined {
    const e = this.#entries.get(id);
    if (e) {
      this.#entries.delete(id);
      this.#entries.set(id, e);
    }
    return e;
  }

  #evict(): void {
    while (this.#entries.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) return;
      this.drop(oldest.value);
      this.#counts.evictions += 1;
    }
  }

  #count(read: NearCacheRead): void {
    this.#counts[read] += 1;
    this.#onRead(read);
  }
}

/** A near cache for `store`, or null when it is off or the store cannot check a rev in one round trip. */
export function createNearCache(
  store: SessionStore,
  options: NearCacheOptions | false | undefined,
  onRead?: (read: NearCacheRead) => void,
): NearCache | null {
  if (!options) return null;
  const cache = new NearCache(store as RevCheckingStore, options, onRead); // validates the limits either way
  // memcached and any store without the capability: every read stays a plain load.
  return store.loadIfChanged ? cache : null;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigError(`${name} must be a positive whole number, got ${String(value)}`);
  }
  return value;
}
