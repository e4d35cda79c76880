import type { Pool, QueryResultRow } from 'pg';
import { ConfigError, StoreUnavailableError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';
import { assertPlainTable, boundedQuery, hearPoolErrors, pgPoolOf } from '../core/pg.js';
import { parsePgHosts, pgForHosts } from '../core/pg-hosts.js';
import type { PgPool } from '../core/pg-pool.js';
import { refusedByServer } from '../core/refused.js';
import type {
  ClaimOptions,
  CommitOptions,
  CommitResult,
  EndedSession,
  EndReason,
  LockGrant,
  SessionDelta,
  SessionStore,
  StoredSession,
  StoreOptions,
} from './contract.js';
import { withLifecycle } from './lifecycle.js';
import { postgresSql } from './postgres-sql.js';

export type { PgPool } from '../core/pg-pool.js';

export interface PostgresStoreOptions extends StoreOptions {
  /** postgres://user:pass@host:5432/db (ignored when `pool` is given). */
  url?: string;
  /** A pg Pool the app already has; close() leaves it open. Give it a connectionTimeoutMillis. */
  pool?: PgPool;
  /** Session table; the lock table and fencing sequence take it as a prefix. */
  table?: string;
  /** Pool size when the store creates its own pool. */
  max?: number;
}

interface SessionMetaRow extends QueryResultRow {
  id: string;
  // bigint columns arrive as strings: pg does not narrow int8 to number by itself
  created_at: string;
  last_seen_at: string;
  idle_deadline: string;
  absolute_deadline: string;
  user_id: string | null;
  rev: string;
  client: string | null;
  /** null: no lifetime of its own (and every row an earlier version wrote). */
  idle_ms: string | null;
}

interface SessionRow extends SessionMetaRow {
  attributes: Record<string, string>;
}

interface MaybeChangedRow extends SessionMetaRow {
  /** null when the stored rev is the one the caller knows */
  attributes: Record<string, string> | null;
}

interface EndedRow extends SessionRow {
  ended_reason: EndReason;
  attempt: number;
}

interface CommitRow extends QueryResultRow {
  cur_rev: string;
  live: boolean;
  new_rev: string | null;
  bad_key: string | null;
  vals: Record<string, string>;
}

const toSession = (r: SessionRow): StoredSession => ({
  id: r.id,
  meta: {
    createdAt: Number(r.created_at),
    lastSeenAt: Number(r.last_seen_at),
    idleDeadline: Number(r.idle_deadline),
    absoluteDeadline: Number(r.absolute_deadline),
    userId: r.user_id,
    rev: Number(r.rev),
    client: r.client ?? undefined,
    ...(r.idle_ms === null ? {} : { idleMs: Number(r.idle_ms) }),
  },
  attributes: r.attributes,
});

/**
 * Session store on PostgreSQL: one row per session (attributes in a jsonb
 * column), one statement per operation, and an indexed ends_at column the
 * sweepers of every node claim from with SKIP LOCKED.
 */
export async function postgresStore(options: PostgresStoreOptions): Promise<SessionStore> {
  const { namespace: ns = 'session', timeoutMs = 2000, table = 'shoal_sessions' } = options;
  assertPlainTable(table, 'postgres store');
  const sql = postgresSql(table);
  const owned = options.pool === undefined;
  const pool = options.pool ? pgPoolOf(options.pool) : await createPool(options, timeoutMs);
  const where = options.url ? describeServer(options.url) : 'the configured server';
  let closed = false;
  const run = boundedQuery(pool, timeoutMs, sql.schema);

  const query = async <R extends QueryResultRow>(op: string, text: string, values: unknown[]) => {
    if (closed) throw new StoreUnavailableError('postgres', `${op} after close(): open a new store.`);
    try {
      return await run<R>(text, values);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      // A server that answered and refused the role, password or database is running: the URL is what to fix.
      const check = refusedByServer(err)
        ? `PostgreSQL at ${where} answered and refused it: check the user, password and database in SHOAL_STORE`
        : `Check that PostgreSQL at ${where} is running and reachable and that SHOAL_STORE points at it`;
      throw new StoreUnavailableError('postgres', `${op} failed (${reason}). ${check}.`, { cause: err });
    }
  };

  return withLifecycle({
    kind: 'postgres',
    capabilities: { lifecycle: true, userIndex: true, locks: true, shared: true },

    async create(session) {
      const m = session.meta;
      const { rowCount } = await query('create', sql.insert, [
        ns,
        session.id,
        JSON.stringify(session.attributes),
        m.createdAt,
        m.lastSeenAt,
        m.idleDeadline,
        m.absoluteDeadline,
        m.userId,
        m.rev,
        m.client ?? null,
        m.idleMs ?? null,
      ]);
      return rowCount === 1;
    },

    async load(id, now) {
      const { rows } = await query<SessionRow>('load', sql.load, [ns, id, now]);
      return rows[0] ? toSession(rows[0]) : null;
    },

    async loadIfChanged(id, now, knownRev) {
      const { rows } = await query<MaybeChangedRow>('loadIfChanged', sql.loadIfChanged, [ns, id, now, knownRev]);
      const row = rows[0];
      if (!row) return null;
      if (row.attributes === null) return { status: 'unchanged', meta: toSession({ ...row, attributes: {} }).meta };
      return { status: 'changed', session: toSession({ ...row, attributes: row.attributes }) };
    },

    async commit(id: string, delta: SessionDelta, options: CommitOptions): Promise<CommitResult> {
      const incr = Object.entries(delta.incr ?? {});
      // float8 takes NaN and would store it; nothing is written, as for a stored non-number.
      for (const [key, by] of incr) if (!Number.isFinite(by)) return { status: 'not-a-number', key };
      const { rows } = await query<CommitRow>('commit', sql.commit, [
        ns,
        id,
        delta.del ?? [],
        JSON.stringify(delta.set ?? {}),
        incr.map(([key]) => key),
        incr.map(([, by]) => by),
        delta.userId !== undefined,
        delta.userId ?? null,
        options.expectedRev ?? null,
        options.now,
        options.idleDeadline,
        delta.lifetime !== undefined,
        delta.lifetime?.idleMs ?? null,
        delta.lifetime?.absoluteMs ?? null,
      ]);
      const row = rows[0];
      if (!row?.live) return { status: 'gone' };
      const rev = Number(row.cur_rev);
      if (options.expectedRev !== undefined && rev !== options.expectedRev) return { status: 'conflict', rev };
      if (row.bad_key !== null) return { status: 'not-a-number', key: row.bad_key };
      return { status: 'ok', rev: Number(row.new_rev), values: row.vals };
    },

    async touch(id, now, idleDeadline) {
      const { rowCount } = await query('touch', sql.touch, [ns, id, now, idleDeadline]);
      return rowCount === 1;
    },

    async destroy(id, now, options) {
      if (options?.silent) {
        const { rows } = await query('destroy', sql.rotateAway, [ns, id, now]);
        return rows.length === 1;
      }
      const { rowCount } = await query('destroy', sql.destroy, [ns, id, now]);
      return rowCount === 1;
    },

    async listByUser(userId, now) {
      const { rows } = await query<SessionRow>('listByUser', sql.listByUser, [ns, userId, now]);
      return rows.map(toSession);
    },

    async claimEnded({ now, limit, leaseMs }: ClaimOptions): Promise<EndedSession[]> {
      const { rows } = await query<EndedRow>('claimEnded', sql.claimEnded, [ns, now, limit, leaseMs]);
      return rows.map((r) => ({ snapshot: toSession(r), reason: r.ended_reason, attempt: r.attempt }));
    },

    async ackEnded(id) {
      await query('ackEnded', sql.ackEnded, [ns, id]);
    },

    async acquireLock(id, name, owner, leaseMs): Promise<LockGrant | null> {
      const { rows } = await query<{ token: string }>('acquireLock', sql.acquireLock, [ns, id, name, owner, leaseMs]);
      return rows[0] ? { fencingToken: Number(rows[0].token) } : null;
    },

    async releaseLock(id, name, owner) {
      await query('releaseLock', sql.releaseLock, [ns, id, name, owner]);
    },

    async ping() {
      await query('ping', 'SELECT 1', []);
    },

    async close() {
      if (closed) return;
      closed = true;
      if (owned) await pool.end();
    },
  } satisfies SessionStore);
}

async function createPool(options: PostgresStoreOptions, timeoutMs: number): Promise<Pool> {
  if (!options.url) {
    throw new ConfigError('postgres store needs a `url` (postgres://user@host:5432/db) or an existing `pool`.');
  }
  const hosts = parsePgHosts(options.url);
  const pg = pgForHosts(
    await importOptional<typeof import('pg')>('pg', 'The PostgreSQL session store (SHOAL_STORE=postgres://…)'),
    hosts,
  );
  const pool = new pg.Pool({
    connectionString: hosts.url,
    max: options.max ?? 10,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    statement_timeout: timeoutMs,
    keepAlive: true,
  });
  hearPoolErrors(pool, true);
  return pool;
}

/** host:port/db for error messages, never the password. */
function describeServer(url: string): string {
  try {
    const { url: first, hosts } = parsePgHosts(url);
    const u = new URL(first);
    return `${hosts.map((h) => `${h.host}:${h.port}`).join(',') || u.host}${u.pathname}`;
  } catch {
    return 'the configured URL';
  }
}
