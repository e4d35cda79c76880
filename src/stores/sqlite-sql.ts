/**
 * SQL of the SQLite session store (src/stores/sqlite.ts). Every statement is
 * scoped by namespace so "session" and "client" scopes share one file.
 *
 * A session row is live while ended_reason IS NULL and both deadlines are in
 * the future; ends_at = min(idle, absolute) is what the sweeper's index scans.
 */

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS shoal_sessions (
  namespace         TEXT    NOT NULL,
  id                TEXT    NOT NULL,
  attributes        TEXT    NOT NULL,
  created_at        INTEGER NOT NULL,
  last_seen_at      INTEGER NOT NULL,
  idle_deadline     INTEGER NOT NULL,
  absolute_deadline INTEGER NOT NULL,
  ends_at           INTEGER NOT NULL,
  user_id           TEXT,
  rev               INTEGER NOT NULL,
  client            TEXT,
  idle_ms           INTEGER,
  ended_reason      TEXT,
  claim_until       INTEGER,
  attempt           INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (namespace, id)
);
CREATE INDEX IF NOT EXISTS shoal_sessions_ends_at ON shoal_sessions (namespace, ends_at);
CREATE INDEX IF NOT EXISTS shoal_sessions_user ON shoal_sessions (namespace, user_id);
CREATE TABLE IF NOT EXISTS shoal_locks (
  namespace  TEXT    NOT NULL,
  session_id TEXT    NOT NULL,
  name       TEXT    NOT NULL,
  owner      TEXT    NOT NULL,
  until      INTEGER NOT NULL,
  token      INTEGER NOT NULL,
  PRIMARY KEY (namespace, session_id, name)
);
CREATE TABLE IF NOT EXISTS shoal_fencing (
  namespace TEXT    PRIMARY KEY,
  value     INTEGER NOT NULL
);
`;

/**
 * Columns added after a table was first created, with their type: a file an earlier version made
 * gets them on open (sqlite.ts). A row without a value reads as an earlier version wrote it.
 */
export const ADDED_COLUMNS: readonly (readonly [name: string, type: string])[] = [['idle_ms', 'INTEGER']];

const LIVE = 'ended_reason IS NULL AND idle_deadline > @now AND absolute_deadline > @now';
const META =
  'id, created_at, last_seen_at, idle_deadline, absolute_deadline, user_id, rev, client, idle_ms, ended_reason, attempt';
/** The idle deadline a touch sets: the session's own idle length when it has one, else the caller's. */
const TOUCHED_IDLE = 'COALESCE(@now + idle_ms, @idleDeadline)';

export const SQL = {
  insert: `INSERT INTO shoal_sessions
      (namespace, id, attributes, created_at, last_seen_at, idle_deadline, absolute_deadline, ends_at, user_id, rev,
       client, idle_ms)
    VALUES (@ns, @id, @attributes, @createdAt, @lastSeenAt, @idleDeadline, @absoluteDeadline,
      MIN(@idleDeadline, @absoluteDeadline), @userId, @rev, @client, @idleMs)
    ON CONFLICT (namespace, id) DO NOTHING`,
  loadLive: `SELECT ${META}, attributes FROM shoal_sessions WHERE namespace = @ns AND id = @id AND ${LIVE}`,
  // attributes is NOT NULL, so NULL here means "rev is the caller's" (the text is neither copied nor parsed).
  loadIfChanged: `SELECT ${META}, CASE WHEN rev = @knownRev THEN NULL ELSE attributes END AS attributes
    FROM shoal_sessions WHERE namespace = @ns AND id = @id AND ${LIVE}`,
  update: `UPDATE shoal_sessions SET attributes = @attributes, user_id = @userId, rev = @rev,
      last_seen_at = @now, idle_deadline = @idleDeadline, absolute_deadline = @absoluteDeadline, idle_ms = @idleMs,
      ends_at = MIN(@idleDeadline, @absoluteDeadline)
    WHERE namespace = @ns AND id = @id`,
  touch: `UPDATE shoal_sessions SET last_seen_at = @now, idle_deadline = ${TOUCHED_IDLE},
      ends_at = MIN(${TOUCHED_IDLE}, absolute_deadline)
    WHERE namespace = @ns AND id = @id AND ${LIVE}`,
  // Kept as a snapshot for onSessionEnd; due at once so the next sweep claims it.
  destroy: `UPDATE shoal_sessions SET ended_reason = 'destroyed', ends_at = MIN(ends_at, @now), claim_until = NULL
    WHERE namespace = @ns AND id = @id AND ${LIVE}`,
  // Rotation (regenerate): the session moved to a new id, so the old row goes with no end for a sweeper to claim.
  rotateAway: `DELETE FROM shoal_sessions WHERE namespace = @ns AND id = @id AND ${LIVE}`,
  listByUser: `SELECT ${META} FROM shoal_sessions WHERE namespace = @ns AND user_id = @userId AND ${LIVE}
    ORDER BY created_at`,
  // Due = past its end (expired, or destroyed: ends_at was pulled to the destroy time) and not under a running lease.
  claim: `UPDATE shoal_sessions SET
      ended_reason = COALESCE(ended_reason,
        CASE WHEN absolute_deadline <= idle_deadline THEN 'absolute-timeout' ELSE 'idle-timeout' END),
      claim_until = @until, attempt = attempt + 1
    WHERE rowid IN (
      SELECT rowid FROM shoal_sessions
      WHERE namespace = @ns AND ends_at <= @now AND (claim_until IS NULL OR claim_until <= @now)
      ORDER BY ends_at LIMIT @limit)
    RETURNING ${META}, attributes`,
  ack: 'DELETE FROM shoal_sessions WHERE namespace = @ns AND id = @id',
  ackLocks: 'DELETE FROM shoal_locks WHERE namespace = @ns AND session_id = @id',
  lockHolder: 'SELECT owner, until FROM shoal_locks WHERE namespace = @ns AND session_id = @id AND name = @name',
  nextFence: `INSERT INTO shoal_fencing (namespace, value) VALUES (@ns, 1)
    ON CONFLICT (namespace) DO UPDATE SET value = value + 1 RETURNING value`,
  lockUpsert: `INSERT INTO shoal_locks (namespace, session_id, name, owner, until, token)
    VALUES (@ns, @id, @name, @owner, @until, @token)
    ON CONFLICT (namespace, session_id, name) DO UPDATE
      SET owner = excluded.owner, until = excluded.until, token = excluded.token`,
  unlock: 'DELETE FROM shoal_locks WHERE namespace = @ns AND session_id = @id AND name = @name AND owner = @owner',
  ping: 'SELECT 1 AS ok',
} as const;

/** A session row as the SELECT/RETURNING statements above give it. */
export interface SessionRow {
  id: string;
  /** Absent from meta-only statements; null from loadIfChanged when the rev is the caller's. */
  attributes?: string | null;
  created_at: number;
  last_seen_at: number;
  idle_deadline: number;
  absolute_deadline: number;
  user_id: string | null;
  rev: number;
  client: string | null;
  /** null: no lifetime of its own (and every row an earlier version wrote). */
  idle_ms: number | null;
  ended_reason: string | null;
  attempt: number;
}
