import { serialisedSchema } from '../core/pg.js';

/**
 * SQL of the PostgreSQL session store (src/stores/postgres.ts). Every statement
 * is scoped by namespace ($1) so "session" and "client" scopes share one table.
 *
 * A row is live while ended_reason IS NULL and ends_at (= the earlier deadline,
 * a generated column) is after `now`. Attribute values are opaque strings, kept
 * as jsonb strings so a commit can change single keys inside one statement.
 * `table` is spliced in: src/core/pg.ts assertPlainTable() admits only plain identifiers.
 */

/** A JSON number (what `incr` accepts), surrounding whitespace allowed as JSON does. */
const JSON_NUMBER = String.raw`^\s*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?\s*$`;

const META = 'id, created_at, last_seen_at, idle_deadline, absolute_deadline, user_id, rev, client, idle_ms';

export interface PostgresSql {
  schema: string;
  insert: string;
  load: string;
  loadIfChanged: string;
  commit: string;
  touch: string;
  destroy: string;
  rotateAway: string;
  listByUser: string;
  claimEnded: string;
  ackEnded: string;
  acquireLock: string;
  releaseLock: string;
}

export function postgresSql(table: string): PostgresSql {
  const t = `"${table}"`;
  const locks = `"${table}_locks"`;
  const fencing = `"${table}_fencing"`;
  const live = (now: string) => `ended_reason IS NULL AND ends_at > ${now}`;
  return {
    schema: serialisedSchema(
      table,
      `CREATE TABLE IF NOT EXISTS ${t} (
  namespace         text    NOT NULL,
  id                text    NOT NULL,
  attributes        jsonb   NOT NULL DEFAULT '{}',
  created_at        bigint  NOT NULL,
  last_seen_at      bigint  NOT NULL,
  idle_deadline     bigint  NOT NULL,
  absolute_deadline bigint  NOT NULL,
  ends_at           bigint  GENERATED ALWAYS AS (least(idle_deadline, absolute_deadline)) STORED,
  user_id           text,
  rev               bigint  NOT NULL,
  client            text,
  idle_ms           bigint,
  ended_reason      text    CHECK (ended_reason IN ('idle-timeout', 'absolute-timeout', 'destroyed')),
  claim_until       bigint,
  attempt           integer NOT NULL DEFAULT 0,
  PRIMARY KEY (namespace, id)
);
-- Columns added since the first version: a table an earlier version created gets them here. Looked up
-- first: ALTER TABLE takes an exclusive lock on a busy table even when it has nothing to add.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_attribute
      WHERE attrelid = '${t}'::regclass AND attname = 'idle_ms' AND NOT attisdropped) THEN
    ALTER TABLE ${t} ADD COLUMN idle_ms bigint;
  END IF;
END $$;
CREATE INDEX IF NOT EXISTS "${table}_live_ends" ON ${t} (namespace, ends_at) WHERE ended_reason IS NULL;
CREATE INDEX IF NOT EXISTS "${table}_ended_claim" ON ${t} (namespace, claim_until) WHERE ended_reason IS NOT NULL;
CREATE INDEX IF NOT EXISTS "${table}_user" ON ${t} (namespace, user_id) WHERE user_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS ${locks} (
  namespace  text   NOT NULL,
  session_id text   NOT NULL,
  name       text   NOT NULL,
  owner      text   NOT NULL,
  until      bigint NOT NULL,
  token      bigint NOT NULL,
  PRIMARY KEY (namespace, session_id, name)
);
CREATE SEQUENCE IF NOT EXISTS ${fencing};`,
    ),

    insert: `INSERT INTO ${t}
      (namespace, id, attributes, created_at, last_seen_at, idle_deadline, absolute_deadline, user_id, rev, client, idle_ms)
    VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (namespace, id) DO NOTHING`,

    load: `SELECT ${META}, attributes FROM ${t} WHERE namespace = $1 AND id = $2 AND ${live('$3')}`,

    // attributes is NOT NULL, so a NULL here means "rev is the caller's": the jsonb is then neither
    // read from TOAST nor sent. $4 known rev
    loadIfChanged: `SELECT ${META}, CASE WHEN rev = $4::bigint THEN NULL ELSE attributes END AS attributes
    FROM ${t} WHERE namespace = $1 AND id = $2 AND ${live('$3')}`,

    // One statement: `cur` locks the newest row version (FOR UPDATE re-reads it
    // after a concurrent commit), the merge is computed from it, and the UPDATE
    // only happens when the row is live, the rev matches and every incr target
    // is a number. The final SELECT says which of those failed.
    // $3 del · $4 set · $5/$6 incr keys/amounts (in call order, so the first
    // bad key is reported) · $7 change user? · $8 user · $9 expected rev · $10 now · $11 idle deadline
    // $12 new lifetime? · $13 its idle length (null: none of its own) · $14 its absolute length.
    // The idle deadline slides by the session's own idle length when it has one, else to $11.
    commit: `WITH cur AS MATERIALIZED (
      SELECT rev, ${live('$10::bigint')} AS live, (attributes - $3::text[]) || $4::jsonb AS base
      FROM ${t} WHERE namespace = $1 AND id = $2 FOR UPDATE
    ), inc AS MATERIALIZED (
      SELECT u.k, u.ord, u.by, cur.base ->> u.k AS old
      FROM cur, unnest($5::text[], $6::float8[]) WITH ORDINALITY AS u(k, by, ord)
    ), bad AS (
      -- a sum past float8's range would raise an error, not refuse: it is reported as bad instead
      SELECT k FROM inc WHERE CASE WHEN old IS NULL THEN false WHEN old !~ '${JSON_NUMBER}' THEN true
        ELSE sign(old::float8) = sign(by) AND abs(old::float8) > ${Number.MAX_VALUE} - abs(by) END
      ORDER BY ord LIMIT 1
    ), sums AS (
      SELECT k, coalesce(old::float8, 0) + by AS n FROM inc WHERE NOT EXISTS (SELECT 1 FROM bad)
    ), vals AS (
      -- integral results print without exponent, like JavaScript's String(n)
      SELECT coalesce(jsonb_object_agg(k, CASE WHEN n = trunc(n) AND abs(n) < 9007199254740992
        THEN n::bigint::text ELSE n::text END), '{}') AS v FROM sums
    ), upd AS (
      UPDATE ${t} SET attributes = cur.base || vals.v, rev = ${t}.rev + 1,
        last_seen_at = $10,
        idle_deadline = coalesce($10::bigint + CASE WHEN $12::boolean THEN $13::bigint ELSE ${t}.idle_ms END, $11::bigint),
        idle_ms = CASE WHEN $12::boolean THEN $13::bigint ELSE ${t}.idle_ms END,
        absolute_deadline = CASE WHEN $12::boolean THEN ${t}.created_at + $14::bigint ELSE ${t}.absolute_deadline END,
        user_id = CASE WHEN $7::boolean THEN $8::text ELSE ${t}.user_id END
      FROM cur, vals
      WHERE ${t}.namespace = $1 AND ${t}.id = $2 AND cur.live
        AND ($9::bigint IS NULL OR cur.rev = $9::bigint) AND NOT EXISTS (SELECT 1 FROM bad)
      RETURNING ${t}.rev
    )
    SELECT cur.rev AS cur_rev, cur.live, (SELECT rev FROM upd) AS new_rev, (SELECT k FROM bad) AS bad_key,
      vals.v AS vals
    FROM cur, vals`,

    touch: `UPDATE ${t} SET last_seen_at = $3, idle_deadline = coalesce($3::bigint + idle_ms, $4::bigint)
    WHERE namespace = $1 AND id = $2 AND ${live('$3')}`,

    // The row stays as the snapshot for onSessionEnd; claim_until 0 makes it due now.
    destroy: `UPDATE ${t} SET ended_reason = 'destroyed', claim_until = 0
    WHERE namespace = $1 AND id = $2 AND ${live('$3')}`,

    // Rotation (regenerate): the session moved to a new id, so the old row goes with no end for a
    // sweeper to claim (and its locks with it, as ackEnded drops them).
    rotateAway: `WITH gone AS (
      DELETE FROM ${t} WHERE namespace = $1 AND id = $2 AND ${live('$3')} RETURNING id
    ), unlocked AS (
      DELETE FROM ${locks} WHERE namespace = $1 AND session_id IN (SELECT id FROM gone)
    )
    SELECT id FROM gone`,

    listByUser: `SELECT ${META}, '{}'::jsonb AS attributes FROM ${t}
    WHERE namespace = $1 AND user_id = $2 AND ${live('$3')}`,

    // SKIP LOCKED lets several sweepers claim disjoint sets; a row claimed by a
    // transaction that committed meanwhile is re-checked and drops out.
    // $2 now · $3 limit · $4 lease
    claimEnded: `WITH due AS MATERIALIZED (
      SELECT id FROM ${t}
      WHERE namespace = $1 AND ((ended_reason IS NULL AND ends_at <= $2) OR (ended_reason IS NOT NULL AND claim_until <= $2))
      LIMIT $3 FOR UPDATE SKIP LOCKED
    )
    UPDATE ${t} SET
      ended_reason = coalesce(ended_reason,
        CASE WHEN absolute_deadline <= idle_deadline THEN 'absolute-timeout' ELSE 'idle-timeout' END),
      claim_until = $2::bigint + $4::bigint, attempt = attempt + 1
    FROM due WHERE ${t}.namespace = $1 AND ${t}.id = due.id
    RETURNING ${t}.*`,

    ackEnded: `WITH gone AS (
      DELETE FROM ${t} WHERE namespace = $1 AND id = $2 AND ended_reason IS NOT NULL RETURNING id
    )
    DELETE FROM ${locks} WHERE namespace = $1 AND session_id IN (SELECT id FROM gone)`,

    // Lease times come from the database clock so every holder measures them
    // alike; EXCLUDED.until - lease is that clock's "now". $5 lease
    acquireLock: `INSERT INTO ${locks} AS l (namespace, session_id, name, owner, until, token)
    VALUES ($1, $2, $3, $4, (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $5::bigint, nextval('${fencing}'))
    ON CONFLICT (namespace, session_id, name) DO UPDATE
      SET owner = EXCLUDED.owner, until = EXCLUDED.until, token = EXCLUDED.token
      WHERE l.until <= EXCLUDED.until - $5::bigint OR l.owner = EXCLUDED.owner
    RETURNING l.token`,

    releaseLock: `DELETE FROM ${locks} WHERE namespace = $1 AND session_id = $2 AND name = $3 AND owner = $4`,
  };
}
