import { randomUUID } from 'node:crypto';
import type { ClientConfig } from 'pg';
import { BusUnavailableError, ConfigError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';
import { assertPlainTable, hearPoolErrors, pgPoolOf } from '../core/pg.js';
import { parsePgHosts, pgForHosts } from '../core/pg-hosts.js';
import type { PgPool } from '../core/pg-pool.js';
import { BusBase } from './base.js';
import type { Bus, BusMessage, BusOptions } from './contract.js';
import { pgListener } from './postgres-listen.js';
import { pgQuery, unavailable } from './postgres-pool.js';
import { notifyChannel, postgresBusSql } from './postgres-sql.js';

export type { PgPool } from '../core/pg-pool.js';

export interface PostgresBusOptions extends BusOptions {
  /** postgres://user:pass@host:5432/db (ignored for queries when `pool` is given). */
  url?: string;
  /** A pg Pool the app already has; close() leaves it open. The LISTEN connection uses its settings. */
  pool?: PgPool;
  /** Table prefix: `<table>_log` and `<table>_channels`; default shoal_bus. */
  table?: string;
  /** How long a row past the history window stays for listeners that lag behind; default 30 s. */
  lagGraceMs?: number;
}

type PgModule = typeof import('pg');
// bigint columns arrive as strings: pg does not narrow int8 to number by itself
type Head = { epoch: string; last: string };
type ReadRow = Head & { seq: string | null; event: string; data: string; published_at: string };
interface Subscription {
  epoch: string | undefined;
  /** Highest offset handed to the handler; undefined until subscribe() has read the position. */
  delivered: number | undefined;
  /** A fetch is running; `again` asks it for one more round (a notification came in meanwhile). */
  fetching: boolean;
  again: boolean;
}

const FETCH_BATCH = 1000;

/**
 * Bus on PostgreSQL: publish is one statement that bumps the channel's offset,
 * appends the row and NOTIFYs (channel, offset) with the commit. One LISTEN
 * connection per bus; a notification only says "look": the listener fetches
 * everything after the last offset it delivered, which also fills in coalesced
 * notifications and, after a reconnect, whatever was published meanwhile.
 */
export async function postgresBus(options: PostgresBusOptions): Promise<Bus> {
  const base = new BusBase(options, { label: 'postgres', advice: 'Check that PostgreSQL is running and reachable' });
  const { namespace: ns, timeoutMs } = base;
  const table = options.table ?? 'shoal_bus';
  assertPlainTable(table, 'postgres bus');
  if (!options.url && !options.pool) {
    throw new ConfigError('postgres bus needs a `url` (postgres://user@host:5432/db) or an existing `pool`.');
  }
  const lagGraceMs = Math.max(0, options.lagGraceMs ?? 30_000);
  const sql = postgresBusSql(table);
  const notify = notifyChannel(table, ns);
  const hosts = parsePgHosts(options.url ?? '');
  const pg = pgForHosts(
    await importOptional<PgModule>('pg', 'The PostgreSQL message bus (SHOAL_BUS=postgres://…)'),
    hosts,
  );
  const given = options.pool && pgPoolOf(options.pool);
  const connection: ClientConfig = given
    ? { ...given.options }
    : { connectionString: hosts.url, connectionTimeoutMillis: timeoutMs, keepAlive: true };
  const owned = given === undefined;
  const pool = given ?? new pg.Pool({ ...connection, max: 10, query_timeout: timeoutMs });
  hearPoolErrors(pool, owned);

  const subscribed = new Map<string, Subscription>();

  const query = pgQuery(pool, timeoutMs, sql.schema, () => {
    if (base.closed) throw base.closedError();
  });

  // A channel's epoch is fixed at first sight, so an empty channel resumes under the epoch its first message carries.
  const head = async (op: string, channel: string): Promise<{ epoch: string; last: number }> => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const [row] = await query<Head>(op, sql.head, [ns, channel]);
      if (row) return { epoch: row.epoch, last: Number(row.last) };
      await query(op, sql.pin, [ns, channel, randomUUID(), Date.now()]);
    }
    throw new BusUnavailableError('postgres', `${op}: the channel row vanished three times in a row; retry.`);
  };
  const readRows = async (channel: string, after: number, limit: number) => {
    let rows = await query<ReadRow>('read', sql.read, [ns, channel, after, limit]);
    if (rows.length === 0) {
      await head('read', channel);
      rows = await query<ReadRow>('read', sql.read, [ns, channel, after, limit]);
    }
    const first = rows[0] ?? { epoch: '', last: '0' };
    const messages: BusMessage[] = rows
      .filter((r) => r.seq !== null)
      .map((r) => ({
        channel,
        epoch: r.epoch,
        offset: Number(r.seq),
        event: r.event,
        data: r.data,
        publishedAt: Number(r.published_at),
      }));
    return { epoch: first.epoch, last: Number(first.last), messages };
  };

  /** Delivers everything after the channel's last delivered offset; one fetch per channel at a time. */
  const fetch = async (channel: string): Promise<void> => {
    const sub = subscribed.get(channel);
    if (!sub || sub.delivered === undefined || sub.epoch === undefined) return;
    if (sub.fetching) {
      sub.again = true;
      return;
    }
    sub.fetching = true;
    try {
      do {
        sub.again = false;
        const got = await readRows(channel, sub.delivered, FETCH_BATCH);
        if (subscribed.get(channel) !== sub) return;
        if (got.epoch !== sub.epoch) {
          // The channel was forgotten (idle past the TTL) and started over: its new log begins at offset 1.
          sub.epoch = got.epoch;
          sub.delivered = 0;
          sub.again = true;
          continue;
        }
        for (const m of got.messages) {
          if (subscribed.get(channel) !== sub) return;
          if (m.offset <= (sub.delivered ?? 0)) continue;
          sub.delivered = m.offset;
          base.deliver(m);
        }
        if (got.messages.length === FETCH_BATCH) sub.again = true;
      } while (sub.again && !base.closed);
    } catch {
      // The next notification, reconnect or this retry fills it in: nothing is lost while delivered stays put.
      if (!base.closed) setTimeout(() => void fetch(channel), 250).unref();
    } finally {
      sub.fetching = false;
    }
  };

  // payload: "<offset> <epoch> <channel>"; an empty channel (name too long for NOTIFY) means "check them all"
  const onNotify = (payload: string) => {
    const [offset = '', epoch = '', ...rest] = payload.split(' ');
    const name = rest.join(' ');
    const targets = name === '' ? [...subscribed.keys()] : [name];
    for (const channel of targets) {
      const sub = subscribed.get(channel);
      if (!sub) continue;
      if (sub.delivered === undefined) sub.again = true;
      else if (epoch !== sub.epoch || Number(offset) > sub.delivered) void fetch(channel);
    }
  };

  const listener = pgListener({
    pg,
    connection,
    timeoutMs,
    applicationName: `shoal-bus ${ns}`,
    channel: notify,
    onNotify,
    onReconnect: () => {
      for (const channel of subscribed.keys()) void fetch(channel);
    },
  });

  return base.bus({
    kind: 'postgres',
    capabilities: { history: true, shared: true },

    async append(channel, input) {
      const now = Date.now();
      const [row] = await query<{ epoch: string; seq: string }>('publish', sql.publish, [
        ns,
        channel,
        randomUUID(),
        input.event,
        input.data,
        now,
        notify,
      ]);
      if (!row) throw new BusUnavailableError('postgres', 'publish returned no row; retry.');
      return {
        channel,
        epoch: row.epoch,
        offset: Number(row.seq),
        event: input.event,
        data: input.data,
        publishedAt: now,
      };
    },

    trimChannel: (channel, upTo) => query('trim', sql.trimChannel, [ns, channel, upTo, Date.now() - lagGraceMs]),

    trimAll: (cutoff) =>
      query('trim', sql.trimOld, [ns, cutoff]).then(() => query('trim', sql.forgetIdle, [ns, cutoff])),

    async listen(channel) {
      try {
        await listener.ready();
      } catch (err) {
        throw unavailable('subscribe (LISTEN)', err);
      }
      // Registered before the position is read: a notification landing meanwhile is replayed by the fetch below.
      const sub: Subscription = { epoch: undefined, delivered: undefined, fetching: false, again: false };
      subscribed.set(channel, sub);
      try {
        const { epoch, last } = await head('subscribe', channel);
        sub.epoch = epoch;
        sub.delivered = last;
      } catch (err) {
        subscribed.delete(channel);
        throw err;
      }
      if (sub.again) void fetch(channel);
    },

    async unlisten(channel) {
      subscribed.delete(channel);
    },

    // The window never holds more than historySize messages after any offset.
    range: (channel, after, limit) => readRows(channel, after, limit),

    async head(channel) {
      const { epoch, last } = await head('position', channel);
      return { epoch, offset: last };
    },

    async ping() {
      await query('ping', 'SELECT 1', []);
    },

    async close() {
      subscribed.clear();
      await listener.close();
      if (owned) await pool.end();
    },
  });
}
