import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { ConfigError, StoreUnavailableError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';
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
import { postgresSql, TABLE_NAME } from './postgres-sql.js';

export interface PostgresStoreOptions extends StoreOptions {
  /** postgres://user:pass@host:5432/db (ignored when `pool` is given). */
  url?: string;
  /** A pool the app already has; close() leaves it open. Give it a connectionTimeoutMillis. */
  pool?: Pool;
  /** Session table; the lock table and fencing sequence take it as a prefix. */
  table?: string;
  /** Pool size when the store creates its own pool. */
  max?: number;
}

interface SessionRow extends QueryResultRow {
  id: string;
  attributes: Record<string, string>;
  // bigint columns arrive as strings: pg does not narrow int8 to number by itself
  created_at: string;
  last_seen_at: string;
  idle_deadline: string;
  absolute_deadline: string;
  user_id: string | null;
  rev: string;
  client: string | null;
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
  if (!TABLE_NAME.test(table)) {
    throw new ConfigError(`postgres store table "${table}" is not a plain identifier: use letters, digits and _ only.`);
  }
  const sql = postgresSql(table);
  const owned = options.pool === undefined;
  const pool = options.pool ?? (await createPool(options, timeoutMs));
  const where = options.url ? describeServer(options.url) : 'the configured server';
  let schema: Promise<void> | undefined;
  let closed = false;

  /** A pooled connection, or a rejection once the deadline passes (a connection arriving later goes back). */
  const connect = (deadline: number): Promise<PoolClient> =>
    new Promise((resolve, reject) => {
      let late = false;
      const timer = setTimeout(
        () => {
          late = true;
          reject(new Error(`no connection within ${timeoutMs} ms`));
        },
        Math.max(0, deadline - Date.now()),
      );
      pool.connect().then(
        (client) => {
          clearTimeout(timer);
          if (late) client.release();
          else resolve(client);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });

  const exec = async <R extends QueryResultRow>(text: string, values: unknown[] | undefined, deadline: number) => {
    const client = await connect(deadline);
    try {
      // query_timeout is read per query by pg; the types only list it on the client config
      const config = { text, values, query_timeout: Math.max(1, deadline - Date.now()) };
      const result = await client.query<R>(config);
      client.release();
      return result;
    } catch (err) {
      // the connection may be mid-query or in an aborted transaction: drop it, the pool opens a fresh one
      client.release(err instanceof Error ? err : true);
      throw err;
    }
  };

  const ready = (deadline: number): Promise<void> => {
    if (!schema) {
      const creating = exec(sql.schema, undefined, deadline).then(() => undefined);
      // a failed attempt (server down) is retried by the next call
      creating.catch(() => {
        if (schema === creating) schema = undefined;
      });
      schema = creating;
    }
    return schema;
  };

  const query = async <R extends QueryResultRow>(op: string, text: string, values: unknown[]) => {
    if (closed) throw new StoreUnavailableError('postgres', `${op} after close(): open a new store.`);
    const deadline = Date.now() + timeoutMs;
    try {
      await ready(deadline);
      return await exec<R>(text, values, deadline);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new StoreUnavailableError(
        'postgres',
        `${op} failed (${reason}). Check that PostgreSQL at ${where} is running and reachable and that SHOAL_STORE points at it.`,
        { cause: err },
      );
    }
  };

  return {
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
      ]);
      return rowCount === 1;
    },

    async load(id, now) {
      const { rows } = await query<SessionRow>('load', sql.load, [ns, id, now]);
      return rows[0] ? toSession(rows[0]) : null;
    },

    async commit(id: string, delta: SessionDelta, options: CommitOptions): Promise<CommitResult> {
      const incr = Object.entries(delta.incr ?? {});
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

    async destroy(id, now) {
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
  } satisfies SessionStore;
}

async function createPool(options: PostgresStoreOptions, timeoutMs: number): Promise<Pool> {
  if (!options.url) {
    throw new ConfigError('postgres store needs a `url` (postgres://user@host:5432/db) or an existing `pool`.');
  }
  const pg = await importOptional<typeof import('pg')>('pg', 'The PostgreSQL session store (SHOAL_STORE=postgres://…)');
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    statement_timeout: timeoutMs,
    keepAlive: true,
  });
  // A server restart kills idle connections and pg reports it here; without a
  // listener that is an uncaught error. The pool drops them and reconnects on demand.
  pool.on('error', () => {});
  // A connection lost while checked out (a query in flight) emits 'error' on the client itself;
  // the query still rejects (→ StoreUnavailableError), but an unheard 'error' would kill the process.
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** host:port/db for error messages, never the password. */
function describeServer(url: string): string {
  try {
    const u = new URL(url);
    return `${u.host}${u.pathname}`;
  } catch {
    return 'the configured URL';
  }
}
