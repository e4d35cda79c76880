import type { LifetimeChange, SessionDelta } from '../stores/contract.js';
import { checkCommitSize, encodeValue } from './codec.js';

/** A value handed out by get(), with the text it was decoded from, to spot in-place mutation. */
export interface ReadValue {
  value: unknown;
  original: string | undefined;
}

/**
 * What one request did to its session: values it set, deleted, and read (a read object that was
 * changed in place is a write too), and the user it associated. Turns them into the delta a commit
 * applies, so only changed attributes travel and concurrent requests on other keys keep theirs.
 */
export class PendingChanges {
  // Each collection is made on its first entry: most requests read one or two keys and write none.
  #read: Map<string, ReadValue> | undefined;
  #set: Map<string, Written> | undefined;
  #del: Set<string> | undefined;
  userId: string | null | undefined = undefined;
  /** setLifetime(): the session's own lifetime to store (idleMs null: back to the manager's). */
  lifetime: LifetimeChange | undefined = undefined;

  /** Values this request read from the store, with their texts. */
  get read(): ReadonlyMap<string, ReadValue> {
    return this.#read ?? NONE;
  }

  /** Whether this request set the key. */
  wrote(key: string): boolean {
    return this.#set?.has(key) ?? false;
  }

  /** The value this request set for the key (undefined if it set none). */
  written(key: string): unknown {
    return this.#set?.get(key)?.value;
  }

  /** The keys this request set. */
  writtenKeys(): Iterable<string> {
    return this.#set?.keys() ?? NO_KEYS;
  }

  /** Keys this request deleted. */
  get del(): ReadonlySet<string> {
    return this.#del ?? NO_KEYS;
  }

  /** Remembers a value read from the store and the text it was decoded from. */
  recordRead(key: string, value: unknown, original: string | undefined): void {
    this.#read ??= new Map();
    this.#read.set(key, { value, original });
  }

  /** Records a set; the value replaces whatever was read or deleted. */
  write(key: string, value: unknown, text?: string): void {
    this.#set ??= new Map();
    // An object is encoded again at commit: the caller may change it in place until then.
    this.#set.set(key, new Written(value, typeof value === 'object' && value !== null ? undefined : text));
    this.#del?.delete(key);
    this.#read?.delete(key);
  }

  remove(key: string): void {
    this.#del ??= new Set();
    this.#del.add(key);
    this.#set?.delete(key);
    this.#read?.delete(key);
  }

  /** The key was written by the store (increment, update): this request has nothing pending for it. */
  settled(key: string, value: unknown, original: string): void {
    this.#set?.delete(key);
    this.#del?.delete(key);
    this.recordRead(key, value, original);
  }

  /** Forgets reads (they may predate another writer) except objects this request changed in place. */
  forgetUnchangedReads(): void {
    if (!this.#read) return;
    for (const [key, seen] of this.#read) if (!mutated(key, seen)) this.#read.delete(key);
  }

  /** Forgets every read: the values are not the session's any more (a rotation without its data). */
  forgetReads(): void {
    this.#read?.clear();
  }

  clear(): void {
    this.#read?.clear();
    this.#set?.clear();
    this.#del?.clear();
    this.userId = undefined;
    this.lifetime = undefined;
  }

  /** JSON texts of everything to write, size-checked; null when nothing changed. */
  delta(maxSize: number): SessionDelta | null {
    // Objects made only for what changed: most requests only read, and this runs on every one.
    // Keys, then get(): iterating a Map's entries makes a [key, value] array per entry.
    let set: Record<string, string> | undefined;
    if (this.#set)
      for (const key of this.#set.keys()) {
        const written = this.#set.get(key) as Written;
        set ??= {};
        set[key] = written.text ?? encodeValue(key, written.value, maxSize);
      }
    if (this.#read)
      for (const key of this.#read.keys()) {
        const seen = this.#read.get(key) as ReadValue;
        if (seen.value === undefined || typeof seen.value !== 'object' || seen.value === null) continue;
        const now = encodeValue(key, seen.value, maxSize);
        if (now !== seen.original) {
          set ??= {};
          set[key] = now;
        }
      }
    if (set) checkCommitSize(set, maxSize);
    const hasDel = this.#del !== undefined && this.#del.size > 0;
    if (!set && !hasDel && this.userId === undefined && this.lifetime === undefined) return null;
    const delta: SessionDelta = {};
    if (set) delta.set = set;
    if (hasDel) delta.del = [...(this.#del as Set<string>)];
    if (this.userId !== undefined) delta.userId = this.userId;
    if (this.lifetime !== undefined) delta.lifetime = this.lifetime;
    return delta;
  }
}

/**
 * A value set by the request, with the JSON text set() already made of it when it cannot change
 * afterwards (not an object), so the commit does not serialise it a second time. One small object
 * per key rather than a second map of texts: a map costs a request ~200 bytes before its first entry.
 */
class Written {
  constructor(
    readonly value: unknown,
    readonly text: string | undefined,
  ) {}
}

const NONE: ReadonlyMap<string, never> = new Map<string, never>();
const NO_KEYS: ReadonlySet<string> = new Set<string>();

function mutated(key: string, seen: ReadValue): boolean {
  return typeof seen.value === 'object' && seen.value !== null && encodeValue(key, seen.value) !== seen.original;
}
