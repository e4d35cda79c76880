/**
 * A `pg` Pool the app already has (`new pg.Pool({ … })`), as the `pool` option of the PostgreSQL store
 * and bus takes it. It is described by a few of its members, not by pg's own type: pg ships no types,
 * and naming `Pool` from 'pg' here would make every project that imports `shoal/stores/postgres` or
 * `shoal/bus/postgres` install @types/pg (or turn off skipLibCheck's checks) to compile, even one that only
 * gives a URL. Any pg Pool fits; shoal's code treats the value as the pg Pool it is (`pgPoolOf`).
 */
export interface PgPool {
  /** The settings it was created with: the bus opens its LISTEN connection with them. */
  readonly options: object;
  readonly totalCount: number;
  connect(): Promise<unknown>;
  end(): Promise<void>;
}
