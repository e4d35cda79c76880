import type { SessionDelta } from '../stores/contract.js';
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
  readonly read = new Map<string, ReadValue>();
  readonly set = new Map<string, unknown>();
  readonly del = new Set<string>();
  userId: string | null | undefined = undefined;

  /** Records a set; the value replaces whatever was read or deleted. */
  write(key: string, value: unknown): void {
    this.set.set(key, value);
    this.del.delete(key);
    this.read.delete(key);
  }

  remove(key: string): void {
    this.del.add(key);
    this.set.delete(key);
    this.read.delete(key);
  }

  /** The key was written by the store (increment, update): this request has nothing pending for it. */
  settled(key: string, value: unknown, original: string): void {
    this.set.delete(key);
    this.del.delete(key);
    this.read.set(key, { value, original });
  }

  /** Forgets reads (they may predate another writer) except objects this request changed in place. */
  forgetUnchangedReads(): void {
    for (const [key, seen] of this.read) if (!mutated(key, seen)) this.read.delete(key);
  }

  clear(): void {
    this.read.clear();
    this.set.clear();
    this.del.clear();
    this.userId = undefined;
  }

  /** JSON texts of everything to write, size-checked; null when nothing changed. */
  delta(maxSize: number): SessionDelta | null {
    const set: Record<string, string> = {};
    let changed = false;
    for (const [key, value] of this.set) {
      set[key] = encodeValue(key, value, maxSize);
      changed = true;
    }
    for (const [key, seen] of this.read) {
      if (seen.value === undefined || typeof seen.value !== 'object' || seen.value === null) continue;
      const now = encodeValue(key, seen.value, maxSize);
      if (now !== seen.original) {
        set[key] = now;
        changed = true;
      }
    }
    if (changed) checkCommitSize(set, maxSize);
    const del = [...this.del];
    if (!changed && del.length === 0 && this.userId === undefined) return null;
    return {
      ...(changed ? { set } : {}),
      ...(del.length ? { del } : {}),
      ...(this.userId !== undefined ? { userId: this.userId } : {}),
    };
  }
}

function mutated(key: string, seen: ReadValue): boolean {
  return typeof seen.value === 'object' && seen.value !== null && encodeValue(key, seen.value) !== seen.original;
}
