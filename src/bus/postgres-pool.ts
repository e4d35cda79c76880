import type { Pool, QueryResultRow } from 'pg';
import { BusUnavailableError, ConfigError } from '../core/errors.js';
import { boundedQuery } from '../core/pg.js';

/** Runs one statement (creating the schema first, once) within timeoutMs, or rejects with BusUnavailableError. */
export type PgQuery = <R extends QueryResultRow>(op: string, text: string, values: unknown[]) => Promise<R[]>;

/** The bus's queries: bounded (src/core/pg.ts), refused after close(), failures as BusUnavailableError. */
export function pgQuery(pool: Pool, timeoutMs: number, schemaSql: string, refuseIfClosed: () => void): PgQuery {
  const run = boundedQuery(pool, timeoutMs, schemaSql);
  return async <R extends QueryResultRow>(op: string, text: string, values: unknown[]) => {
    refuseIfClosed();
    try {
      return (await run<R>(text, values)).rows;
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
