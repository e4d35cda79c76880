import pg from 'pg';
import type { PostgresBusOptions } from 'shoal/bus/postgres';
import type { PgPool, PostgresStoreOptions } from 'shoal/stores/postgres';
import { describe, expect, it } from 'vitest';

/**
 * The `pool` option is typed without pg's types (test/consumer checks that the published types need
 * none); this is the other half, checked when the tests are typechecked: a pg Pool still fits it.
 */
describe('the pool option of the PostgreSQL store and bus', () => {
  it('takes a pg Pool, and neither a Client nor a URL', async () => {
    const pool = new pg.Pool({ connectionString: 'postgres://127.0.0.1:9/none' }); // connects on first use only
    const store: PostgresStoreOptions = { pool };
    const bus: PostgresBusOptions = { pool };
    const client = new pg.Client();
    // @ts-expect-error a Client is one connection, not a pool
    const notAPool: PgPool = client;
    // @ts-expect-error the URL goes in `url`
    const url: PostgresStoreOptions = { pool: 'postgres://127.0.0.1/db' };
    expect([store.pool, bus.pool, notAPool, url.pool]).toHaveLength(4);
    await pool.end();
  });
});
