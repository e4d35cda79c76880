import { createHash } from 'node:crypto';
import { serialisedSchema } from '../core/pg.js';

/**
 * SQL of the PostgreSQL bus (src/bus/postgres.ts). Every statement is scoped by
 * namespace ($1) and channel ($2). `<table>_channels` holds each channel's epoch
 * and newest offset; `<table>_log` the messages. `table` is spliced in: src/core/pg.ts
 * assertPlainTable() admits only plain identifiers.
 */

/** NOTIFY payloads must stay under 8000 bytes: a longer channel name is sent empty ("check every channel"). */
const MAX_NAMED_CHANNEL = 7000;

/** The LISTEN/NOTIFY channel of one table and namespace (an identifier of at most 63 bytes). */
export function notifyChannel(table: string, namespace: string): string {
  return `shoal_bus_${createHash('sha256').update(`${table}\0${namespace}`).digest('hex').slice(0, 24)}`;
}

export interface PostgresBusSql {
  schema: string;
  publish: string;
  trimChannel: string;
  trimOld: string;
  forgetIdle: string;
  head: string;
  pin: string;
  read: string;
}

export function postgresBusSql(table: string): PostgresBusSql {
  const ch = `"${table}_channels"`;
  const log = `"${table}_log"`;
  return {
    schema: serialisedSchema(
      table,
      `CREATE TABLE IF NOT EXISTS ${ch} (
  namespace  text   NOT NULL,
  channel    text   NOT NULL,
  epoch      text   NOT NULL,
  last       bigint NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (namespace, channel)
);
CREATE TABLE IF NOT EXISTS ${log} (
  namespace    text   NOT NULL,
  channel      text   NOT NULL,
  seq          bigint NOT NULL,
  epoch        text   NOT NULL,
  event        text   NOT NULL,
  data         text   NOT NULL,
  published_at bigint NOT NULL,
  PRIMARY KEY (namespace, channel, seq)
);
CREATE INDEX IF NOT EXISTS "${table}_log_time" ON ${log} (namespace, published_at);`,
    ),

    // One statement: the channel row's lock orders concurrent publishers, so offsets commit in
    // order per channel, and the NOTIFY leaves with the commit (never before the row is visible).
    // $1 ns, $2 channel, $3 new epoch, $4 event, $5 data, $6 published_at, $7 notify channel
    publish: `WITH head AS (
  INSERT INTO ${ch} AS c (namespace, channel, epoch, last, updated_at) VALUES ($1::text, $2::text, $3::text, 1, $6::bigint)
  ON CONFLICT (namespace, channel) DO UPDATE SET last = c.last + 1, updated_at = EXCLUDED.updated_at
  RETURNING c.epoch, c.last
), appended AS (
  INSERT INTO ${log} (namespace, channel, seq, epoch, event, data, published_at)
  SELECT $1, $2, head.last, head.epoch, $4::text, $5::text, $6 FROM head
  RETURNING seq, epoch
)
SELECT epoch, seq,
  pg_notify($7::text, seq::text || ' ' || epoch || ' ' || CASE WHEN octet_length($2) > ${MAX_NAMED_CHANNEL} THEN '' ELSE $2 END)
FROM appended`,

    // $3 keep offsets above this, $4 but only rows older than this (lagging listeners still fetch them)
    trimChannel: `DELETE FROM ${log} WHERE namespace = $1 AND channel = $2 AND seq <= $3 AND published_at < $4`,
    trimOld: `DELETE FROM ${log} WHERE namespace = $1 AND published_at < $2`,
    // A channel idle past the TTL has no history left; forgetting it gives its next message a new epoch.
    forgetIdle: `DELETE FROM ${ch} c WHERE namespace = $1 AND updated_at < $2
  AND NOT EXISTS (SELECT 1 FROM ${log} l WHERE l.namespace = c.namespace AND l.channel = c.channel)`,
    head: `SELECT epoch, last FROM ${ch} WHERE namespace = $1 AND channel = $2`,
    pin: `INSERT INTO ${ch} (namespace, channel, epoch, last, updated_at) VALUES ($1, $2, $3, 0, $4)
  ON CONFLICT (namespace, channel) DO NOTHING`,
    // One statement is one snapshot: the head and the rows agree even while others publish.
    // $3 after, $4 limit
    read: `SELECT c.epoch, c.last, l.seq, l.event, l.data, l.published_at
FROM ${ch} c LEFT JOIN LATERAL (
  SELECT seq, event, data, published_at FROM ${log}
  WHERE namespace = c.namespace AND channel = c.channel AND seq > $3 ORDER BY seq LIMIT $4
) l ON true
WHERE c.namespace = $1 AND c.channel = $2
ORDER BY l.seq`,
  };
}
