import type { Pool, PoolClient, QueryResultRow } from 'pg';
import { BusUnavailableError, ConfigError } from '../core/errors.js';

/** Runs one statement (creating the schema first, once) within timeoutMs, or rejects with BusUnavailableError. */
export type PgQuery = <R extends QueryResultRow>(op: string, text: string, values: unknown[]) => Promise<R[]>;

/**
 * Bounded queries on a pool: waiting for a connection and running the statement
 * share one deadline, so a down or saturated server fails within timeoutMs
 * instead of queueing forever (an app's own pool may have no connect timeout).
 */
export function pgQuery(pool: Pool, timeoutMs: number, schemaSql: string, isClosed: () => boolean): PgQuery {
  let schema: Promise<void> | undefined;

  /** A pooled connection within the deadline; one arriving later goes straight back. */
  const connect = (deadline: number) =>
    new Promise<PoolClient>((resolve, reject) => {
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        reject(new Error(`no connection within ${timeoutMs} ms`));
      }, deadline - Date.now());
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
      return result.rows;
    } catch (err) {
      // the connection may be mid-query or in an aborted transaction: drop it, the pool opens a fresh one
      client.release(err instanceof Error ? err : true);
      throw err;
    }
  };

  const ready = (deadline: number) => {
    if (!schema) {
      const creating = exec(schemaSql, undefined, deadline).then(() => undefined);
      creating.catch(() => {
        if (schema === creating) schema = undefined; // retried by the next call
      });
      schema = creating;
    }
    return schema;
  };

  return async <R extends QueryResultRow>(op: string, text: string, values: unknown[]) => {
    if (isClosed()) throw new BusUnavailableError('postgres', `${op} after close(): open a new bus with createBus().`);
    const deadline = Date.now() + timeoutMs;
    try {
      await ready(deadline);
      return await exec<R>(text, values, deadline);
    } catch (err) {
      throw unavailable(op, err);
    }
  };
}

export function unavailable(op: string, err: unknown): Error {
  if (err instanceof BusUnavailableError || err instanceof ConfigError) return err;
  return new BusUnavailableError(
    'postgres',
    `${op} failed (${(err as Error).message}). Check that PostgreSQL is running and SHOAL_BUS points at it.`,
    { cause: err },
  );
}
