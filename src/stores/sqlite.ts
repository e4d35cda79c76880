import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError, StoreUnavailableError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';
import {
  asNumber,
  type CommitOptions,
  type CommitResult,
  type EndedSession,
  type EndReason,
  type LockGrant,
  type SessionDelta,
  type SessionStore,
  type StoredSession,
  type StoreOptions,
} from './contract.js';
import { SCHEMA, type SessionRow, SQL } from './sqlite-sql.js';

export interface SqliteStoreOptions extends StoreOptions {
  /** Database file; its directory is created when missing. ":memory:" keeps it private to this process. */
  path: string;
}

type Db = BetterSqlite3.Database;
type Key = { ns: string; id: string };
type Live = Key & { now: number };

/**
 * The embedded default store: one SQLite file shared by every process on this
 * machine. WAL lets readers run beside the single writer; every mutation is a
 * BEGIN IMMEDIATE transaction, so a read-modify-write holds the write lock from
 * its first read and cannot interleave with another process's.
 */
export async function sqliteStore(options: SqliteStoreOptions): Promise<SessionStore> {
  const ns = options.namespace ?? 'session';
  const timeoutMs = Math.min(0x7fffffff, Math.max(0, Math.round(options.timeoutMs ?? 5000)));
  const anonymous = options.path.trim() === '' || options.path.trim() === ':memory:';
  const file = anonymous ? ':memory:' : resolve(options.path);
  const label = `sqlite (${file})`;
  const db = await open(file, anonymous, timeoutMs);

  // better-sqlite3 is synchronous: a lock held elsewhere past busy_timeout throws SQLITE_BUSY right here.
  const guard = <T>(fn: () => T): T => {
    if (!db.open) throw new StoreUnavailableError(label, 'this store was closed; open a new one with createStore()');
    try {
      return fn();
    } catch (err) {
      throw translate(label, timeoutMs, err);
    }
  };
  const immediate = <A extends unknown[], R>(fn: (...args: A) => R) => {
    const t = db.transaction(fn);
    return (...args: A): R => guard(() => t.immediate(...args));
  };

  const s = {
    insert: db.prepare<Record<string, string | number | null>>(SQL.insert),
    loadLive: db.prepare<Live, SessionRow>(SQL.loadLive),
    update: db.prepare<
      Key & { attributes: string; userId: string | null; rev: number; now: number; idleDeadline: number }
    >(SQL.update),
    touch: db.prepare<Live & { idleDeadline: number }>(SQL.touch),
    destroy: db.prepare<Live>(SQL.destroy),
    listByUser: db.prepare<{ ns: string; userId: string; now: number }, SessionRow>(SQL.listByUser),
    claim: db.prepare<{ ns: string; now: number; until: number; limit: number }, SessionRow>(SQL.claim),
    ack: db.prepare<Key>(SQL.ack),
    ackLocks: db.prepare<Key>(SQL.ackLocks),
    lockHolder: db.prepare<Key & { name: string }, { owner: string; until: number }>(SQL.lockHolder),
    nextFence: db.prepare<{ ns: string }, { value: number }>(SQL.nextFence),
    lockUpsert: db.prepare<Key & { name: string; owner: string; until: number; token: number }>(SQL.lockUpsert),
    unlock: db.prepare<Key & { name: string; owner: string }>(SQL.unlock),
    ping: db.prepare<[], { ok: number }>(SQL.ping),
  };

  const create = immediate((session: StoredSession): boolean => {
    const m = session.meta;
    const info = s.insert.run({
      ns,
      id: session.id,
      attributes: encodeAttributes(new Map(Object.entries(session.attributes))),
      createdAt: m.createdAt,
      lastSeenAt: m.lastSeenAt,
      idleDeadline: m.idleDeadline,
      absoluteDeadline: m.absoluteDeadline,
      userId: m.userId,
      rev: m.rev,
      client: m.client ?? null,
    });
    return info.changes === 1;
  });

  const commit = immediate((id: string, delta: SessionDelta, o: CommitOptions): CommitResult => {
    const row = s.loadLive.get({ ns, id, now: o.now });
    if (!row) return { status: 'gone' };
    if (o.expectedRev !== undefined && o.expectedRev !== row.rev) return { status: 'conflict', rev: row.rev };
    // A Map, not a plain object: attribute names are user data ("__proto__" included).
    const attrs = new Map(Object.entries(decodeAttributes(row.attributes)));
    for (const key of delta.del ?? []) attrs.delete(key);
    for (const [key, value] of Object.entries(delta.set ?? {})) attrs.set(key, value);
    const values = new Map<string, string>();
    for (const [key, by] of Object.entries(delta.incr ?? {})) {
      const current = asNumber(attrs.get(key));
      if (current === undefined) return { status: 'not-a-number', key };
      const next = String(current + by);
      attrs.set(key, next);
      values.set(key, next);
    }
    const rev = row.rev + 1;
    s.update.run({
      ns,
      id,
      attributes: encodeAttributes(attrs),
      userId: delta.userId === undefined ? row.user_id : delta.userId,
      rev,
      now: o.now,
      idleDeadline: o.idleDeadline,
    });
    return { status: 'ok', rev, values: Object.fromEntries(values) };
  });

  const touch = immediate((id: string, now: number, idleDeadline: number) => {
    return s.touch.run({ ns, id, now, idleDeadline }).changes === 1;
  });
  const destroy = immediate((id: string, now: number) => s.destroy.run({ ns, id, now }).changes === 1);

  const claim = immediate((now: number, limit: number, leaseMs: number): EndedSession[] =>
    s.claim.all({ ns, now, until: now + leaseMs, limit }).map((row) => ({
      snapshot: toSession(row),
      reason: row.ended_reason as EndReason,
      attempt: row.attempt,
    })),
  );
  const ack = immediate((id: string) => {
    s.ack.run({ ns, id });
    s.ackLocks.run({ ns, id });
  });

  const acquire = immediate((id: string, name: string, owner: string, leaseMs: number): LockGrant | null => {
    // Read the clock after the write lock is ours, so waiting for it does not shorten the lease.
    const now = Date.now();
    const held = s.lockHolder.get({ ns, id, name });
    if (held && held.until > now && held.owner !== owner) return null;
    const token = s.nextFence.get({ ns })?.value;
    if (token === undefined) throw new Error('fencing counter returned no row');
    s.lockUpsert.run({ ns, id, name, owner, until: now + leaseMs, token });
    return { fencingToken: token };
  });
  const release = immediate((id: string, name: string, owner: string) => {
    s.unlock.run({ ns, id, name, owner });
  });

  return {
    kind: 'sqlite',
    capabilities: { lifecycle: true, userIndex: true, locks: true, shared: !anonymous },
    create: async (session) => create(session),
    load: async (id, now) => {
      const row = guard(() => s.loadLive.get({ ns, id, now }));
      return row ? toSession(row) : null;
    },
    commit: async (id, delta, options) => commit(id, delta, options),
    touch: async (id, now, idleDeadline) => touch(id, now, idleDeadline),
    destroy: async (id, now) => destroy(id, now),
    listByUser: async (userId, now) => guard(() => s.listByUser.all({ ns, userId, now })).map(toSession),
    claimEnded: async ({ now, limit, leaseMs }) => claim(now, limit, leaseMs),
    ackEnded: async (id) => ack(id),
    acquireLock: async (id, name, owner, leaseMs) => acquire(id, name, owner, leaseMs),
    releaseLock: async (id, name, owner) => release(id, name, owner),
    ping: async () => {
      guard(() => s.ping.get());
    },
    close: async () => {
      if (db.open) db.close();
    },
  } satisfies SessionStore;
}

async function open(file: string, anonymous: boolean, timeoutMs: number): Promise<Db> {
  const { default: Database } = await importOptional<{ default: typeof BetterSqlite3 }>(
    'better-sqlite3',
    'The SQLite session store (SHOAL_STORE=sqlite:…)',
  );
  if (!anonymous) {
    try {
      mkdirSync(dirname(file), { recursive: true });
    } catch (err) {
      throw new ConfigError(
        `The SQLite session store cannot create the directory ${dirname(file)} for ${file} (${(err as Error).message}). ` +
          'Point SHOAL_STORE=sqlite:<path> at a location this process may write to.',
        { cause: err },
      );
    }
  }
  let db: Db | undefined;
  try {
    // The constructor's timeout is SQLite's busy_timeout: it must be set before the WAL switch, which locks the file.
    const opened = new Database(file, { timeout: timeoutMs });
    db = opened;
    opened.pragma('journal_mode = WAL');
    opened.pragma('synchronous = NORMAL');
    // Several processes may start on a fresh file at once: the write lock makes the DDL run once, in turn.
    opened.transaction(() => opened.exec(SCHEMA)).immediate();
    return opened;
  } catch (err) {
    db?.close();
    throw openError(file, timeoutMs, err);
  }
}

function openError(file: string, timeoutMs: number, err: unknown): unknown {
  const e = err as NodeJS.ErrnoException;
  if (typeof e.code === 'string' && e.code.startsWith('SQLITE_BUSY'))
    return translate(`sqlite (${file})`, timeoutMs, err);
  if (!e.code?.startsWith('SQLITE_') && /bindings|NODE_MODULE_VERSION|\.node\b|dlopen/i.test(String(e.message))) {
    return new ConfigError(
      `better-sqlite3 is installed but its native addon did not load for Node ${process.version} (${e.message}). ` +
        'Run: npm rebuild better-sqlite3 (a C++ toolchain is needed when no prebuilt binary matches), or set SHOAL_STORE to another store.',
      { cause: err },
    );
  }
  return new ConfigError(
    `The SQLite session store cannot open ${file} (${e.code ?? 'error'}: ${e.message}). ` +
      'Check that the path is a SQLite database (or does not exist yet) and that its directory is writable, ' +
      'or point SHOAL_STORE=sqlite:<path> elsewhere.',
    { cause: err },
  );
}

function translate(label: string, timeoutMs: number, err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  const why =
    code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')
      ? `the database stayed locked by another connection for more than ${timeoutMs} ms. ` +
        'Raise timeoutMs, look for a process holding a long transaction, or use redis:// or postgres:// for heavy write traffic.'
      : `${code}: ${(err as Error).message}. Check the file and its directory are writable and the disk is not full.`;
  return new StoreUnavailableError(label, why, { cause: err });
}

function decodeAttributes(text: string | undefined): Record<string, string> {
  return text === undefined ? {} : (JSON.parse(text) as Record<string, string>);
}

function encodeAttributes(attrs: Map<string, string>): string {
  // fromEntries defines own properties, so a "__proto__" attribute survives as data.
  return JSON.stringify(Object.fromEntries(attrs));
}

function toSession(row: SessionRow): StoredSession {
  return {
    id: row.id,
    meta: {
      createdAt: row.created_at,
      lastSeenAt: row.last_seen_at,
      idleDeadline: row.idle_deadline,
      absoluteDeadline: row.absolute_deadline,
      userId: row.user_id,
      rev: row.rev,
      client: row.client ?? undefined,
    },
    attributes: decodeAttributes(row.attributes),
  };
}
