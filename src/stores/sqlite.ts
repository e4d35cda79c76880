import type BetterSqlite3 from 'better-sqlite3';
import { StoreUnavailableError } from '../core/errors.js';
import { openSqliteFile, type SqliteRole } from '../core/sqlite-file.js';
import {
  type CommitOptions,
  type CommitResult,
  type EndedSession,
  type EndReason,
  type LockGrant,
  type SessionDelta,
  type SessionStore,
  type StoredSession,
  type StoreOptions,
  slide,
} from './contract.js';
import { applyDelta } from './delta.js';
import { withLifecycle } from './lifecycle.js';
import { ADDED_COLUMNS, SCHEMA, type SessionRow, SQL } from './sqlite-sql.js';

export interface SqliteStoreOptions extends StoreOptions {
  /** Database file; its directory is created when missing. ":memory:" keeps it private to this process. */
  path: string;
}

type Key = { ns: string; id: string };
type Live = Key & { now: number };

const ROLE: SqliteRole = {
  feature: 'The SQLite session store',
  setting: 'SHOAL_STORE',
  instead: 'redis:// or postgres:// for heavy write traffic',
  closed: 'this store was closed; open a new one with createStore()',
  unavailable: StoreUnavailableError,
  addonFallback: 'set SHOAL_STORE to another store',
};

/**
 * The embedded default store: one SQLite file shared by every process on this
 * machine. WAL lets readers run beside the single writer; every mutation is a
 * BEGIN IMMEDIATE transaction, so a read-modify-write holds the write lock from
 * its first read and cannot interleave with another process's.
 */
export async function sqliteStore(options: SqliteStoreOptions): Promise<SessionStore> {
  const ns = options.namespace ?? 'session';
  const timeoutMs = Math.min(0x7fffffff, Math.max(0, Math.round(options.timeoutMs ?? 5000)));
  const { db, anonymous, guard } = await openSqliteFile(options.path, timeoutMs, SCHEMA, ROLE, addColumns);
  const immediate = <A extends unknown[], R>(fn: (...args: A) => R) => {
    const t = db.transaction(fn);
    return (...args: A): R => guard(() => t.immediate(...args));
  };

  const s = {
    insert: db.prepare<Record<string, string | number | null>>(SQL.insert),
    loadLive: db.prepare<Live, SessionRow>(SQL.loadLive),
    loadIfChanged: db.prepare<Live & { knownRev: number }, SessionRow>(SQL.loadIfChanged),
    update: db.prepare<
      Key & {
        attributes: string;
        userId: string | null;
        rev: number;
        now: number;
        idleDeadline: number;
        absoluteDeadline: number;
        idleMs: number | null;
      }
    >(SQL.update),
    touch: db.prepare<Live & { idleDeadline: number }>(SQL.touch),
    destroy: db.prepare<Live>(SQL.destroy),
    rotateAway: db.prepare<Live>(SQL.rotateAway),
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
      idleMs: m.idleMs ?? null,
    });
    return info.changes === 1;
  });

  const commit = immediate((id: string, delta: SessionDelta, o: CommitOptions): CommitResult => {
    const row = s.loadLive.get({ ns, id, now: o.now });
    if (!row) return { status: 'gone' };
    if (o.expectedRev !== undefined && o.expectedRev !== row.rev) return { status: 'conflict', rev: row.rev };
    const applied = applyDelta(decodeAttributes(row.attributes), row.user_id, delta);
    if ('status' in applied) return applied;
    const rev = row.rev + 1;
    const to = slide(
      { createdAt: row.created_at, absoluteDeadline: row.absolute_deadline, idleMs: row.idle_ms ?? undefined },
      delta.lifetime,
      o.now,
      o.idleDeadline,
    );
    s.update.run({
      ns,
      id,
      attributes: encodeAttributes(new Map(Object.entries(applied.attributes))),
      userId: applied.userId,
      rev,
      now: o.now,
      idleDeadline: to.idleDeadline,
      absoluteDeadline: to.absoluteDeadline,
      idleMs: to.idleMs ?? null,
    });
    return { status: 'ok', rev, values: applied.values };
  });

  const touch = immediate((id: string, now: number, idleDeadline: number) => {
    return s.touch.run({ ns, id, now, idleDeadline }).changes === 1;
  });
  const destroy = immediate((id: string, now: number, silent: boolean): boolean => {
    if (!silent) return s.destroy.run({ ns, id, now }).changes === 1;
    if (s.rotateAway.run({ ns, id, now }).changes !== 1) return false;
    s.ackLocks.run({ ns, id });
    return true;
  });

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

  return withLifecycle({
    kind: 'sqlite',
    capabilities: { lifecycle: true, userIndex: true, locks: true, shared: !anonymous },
    create: async (session) => create(session),
    load: async (id, now) => {
      const row = guard(() => s.loadLive.get({ ns, id, now }));
      return row ? toSession(row) : null;
    },
    loadIfChanged: async (id, now, knownRev) => {
      const row = guard(() => s.loadIfChanged.get({ ns, id, now, knownRev }));
      if (!row) return null;
      if (row.attributes === null) return { status: 'unchanged', meta: toSession(row).meta };
      return { status: 'changed', session: toSession(row) };
    },
    commit: async (id, delta, options) => commit(id, delta, options),
    touch: async (id, now, idleDeadline) => touch(id, now, idleDeadline),
    destroy: async (id, now, options) => destroy(id, now, options?.silent === true),
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
  } satisfies SessionStore);
}

/** A table an earlier version created gets the columns added since (in the schema's write transaction). */
function addColumns(db: BetterSqlite3.Database): void {
  const have = new Set(
    (db.prepare('PRAGMA table_info(shoal_sessions)').all() as { name: string }[]).map((column) => column.name),
  );
  for (const [name, type] of ADDED_COLUMNS) {
    if (!have.has(name)) db.exec(`ALTER TABLE shoal_sessions ADD COLUMN ${name} ${type}`);
  }
}

function decodeAttributes(text: string | null | undefined): Record<string, string> {
  return text === undefined || text === null ? {} : (JSON.parse(text) as Record<string, string>);
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
      ...(row.idle_ms === null ? {} : { idleMs: row.idle_ms }),
    },
    attributes: decodeAttributes(row.attributes),
  };
}
