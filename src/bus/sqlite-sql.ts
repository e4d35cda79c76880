/**
 * SQL of the SQLite bus (src/bus/sqlite.ts). Every statement is scoped by namespace
 * (@ns); `shoal_bus_channels` holds each channel's epoch and newest offset.
 */

// AUTOINCREMENT: ids are never reused even when trimming empties the table, so a poller's "id > last" never skips.
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS shoal_bus_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace TEXT NOT NULL, channel TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL,
  event TEXT NOT NULL, data TEXT NOT NULL, published_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS shoal_bus_log_channel ON shoal_bus_log (namespace, channel, seq);
CREATE INDEX IF NOT EXISTS shoal_bus_log_time ON shoal_bus_log (namespace, published_at);
CREATE TABLE IF NOT EXISTS shoal_bus_channels (
  namespace TEXT NOT NULL, channel TEXT NOT NULL, epoch TEXT NOT NULL,
  last INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  PRIMARY KEY (namespace, channel)
) WITHOUT ROWID;`;

export const SQL = {
  bump: `INSERT INTO shoal_bus_channels (namespace, channel, epoch, last, updated_at) VALUES (@ns, @channel, @epoch, 1, @now)
    ON CONFLICT (namespace, channel) DO UPDATE SET last = last + 1, updated_at = excluded.updated_at
    RETURNING epoch, last`,
  append: `INSERT INTO shoal_bus_log (namespace, channel, epoch, seq, event, data, published_at)
    VALUES (@ns, @channel, @epoch, @seq, @event, @data, @published_at)`,
  trimChannel:
    'DELETE FROM shoal_bus_log WHERE namespace = @ns AND channel = @channel AND seq <= @upTo AND published_at < @before',
  trimOld: 'DELETE FROM shoal_bus_log WHERE namespace = @ns AND published_at < @cutoff',
  forgetIdle: `DELETE FROM shoal_bus_channels WHERE namespace = @ns AND updated_at < @cutoff AND NOT EXISTS
    (SELECT 1 FROM shoal_bus_log l WHERE l.namespace = @ns AND l.channel = shoal_bus_channels.channel)`,
  channel: 'SELECT epoch, last FROM shoal_bus_channels WHERE namespace = @ns AND channel = @channel',
  pin: `INSERT OR IGNORE INTO shoal_bus_channels (namespace, channel, epoch, last, updated_at)
    VALUES (@ns, @channel, @epoch, 0, @now)`,
  after: `SELECT id, channel, epoch, seq, event, data, published_at FROM shoal_bus_log
    WHERE namespace = @ns AND channel = @channel AND seq > @after ORDER BY seq LIMIT @limit`,
  poll: `SELECT id, channel, epoch, seq, event, data, published_at FROM shoal_bus_log
    WHERE id > @last AND namespace = @ns ORDER BY id LIMIT @limit`,
  maxId: 'SELECT coalesce(max(id), 0) AS id FROM shoal_bus_log',
  ping: 'SELECT 1 AS ok',
} as const;
