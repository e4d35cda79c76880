import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { ConfigError } from './errors.js';
import type { PgPool } from './pg-pool.js';

/** The pool an app gave (typed without pg's types in the public options, pg-pool.ts) as the pg Pool it is. */
export function pgPoolOf(pool: PgPool): Pool {
  return pool as unknown as Pool;
}

/** Table names are spliced into SQL, so only plain identifiers are accepted. */
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

/** Refuses a table name that is not a plain identifier; `owner` names the setting's user, e.g. "postgres store". */
export function assertPlainTable(table: string, owner: string): void {
  if (!TABLE_NAME.test(table)) {
    throw new ConfigError(`${owner} table "${table}" is not a plain identifier: use letters, digits and _ only.`);
  }
}

/**
 * The DDL that creates a table's schema, in one transaction. Several processes may start at once:
 * CREATE … IF NOT EXISTS alone races on the catalog (duplicate key in pg_type), so creation is
 * serialised by an advisory lock that is released with the transaction.
 */
export function serialisedSchema(table: string, ddl: string): string {
  return `BEGIN;\nSELECT pg_advisory_xact_lock(hashtext('shoal schema ${table}'));\n${ddl}\nCOMMIT;`;
}

/**
 * Keeps a lost connection from becoming an uncaught 'error'. A server restart kills
 * idle connections and pg reports it on the pool: heard here on a pool we own (the
 * pool drops them and reconnects on demand). A connection lost while checked out (a
 * query in flight) emits 'error' on the client itself; the query still rejects.
 */
export function hearPoolErrors(pool: Pool, owned: boolean): void {
  if (owned) pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
}

/** Runs one statement (creating the schema first, once) within the deadline; rejects with pg's own error. */
export type BoundedQuery = <R extends QueryResultRow>(text: string, values: unknown[]) => Promise<QueryResult<R>>;

/**
 * Bounded queries on a pool: waiting for a connection and running the statement
 * share one deadline, so a down or saturated server fails within timeoutMs
 * instead of queueing forever (an app's own pool may have no connect timeout).
 */
export function boundedQuery(pool: Pool, timeoutMs: number, schemaSql: string): BoundedQuery {
  let schema: Promise<void> | undefined;

  /** A pooled connection within the deadline; one arriving later goes straight back. */
  const connect = (deadline: number) =>
    new Promise<PoolClient>((resolve, reject) => {
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
      const creating = exec(schemaSql, undefined, deadline).then(() => undefined);
      // a failed attempt (server down) is retried by the next call
      creating.catch(() => {
        if (schema === creating) schema = undefined;
      });
      schema = creating;
    }
    return schema;
  };

  return async <R extends QueryResultRow>(text: string, values: unknown[]) => {
    const deadline = Date.now() + timeoutMs;
    await ready(deadline);
    return exec<R>(text, values, deadline);
  };
}
