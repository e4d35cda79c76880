import { randomUUID } from 'node:crypto';
import type { ClientConfig, Pool } from 'pg';
import { BusUnavailableError, ConfigError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';
import { assertPlainTable, hearPoolErrors } from '../core/pg.js';
import type { Bus, BusMessage, BusOptions, MessageHandler, Position, ReadResult } from './contract.js';
import { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL_MS, deliver, isComplete, positiveInt } from './history.js';
import { pgListener } from './postgres-listen.js';
import { pgQuery, unavailable } from './postgres-pool.js';
import { notifyChannel, postgresBusSql } from './postgres-sql.js';

export interface PostgresBusOptions extends BusOptions {
  /** postgres://user:pass@host:5432/db (ignored for queries when `pool` is given). */
  url?: string;
  /** A pool the app already has; close() leaves it open. The LISTEN connection uses its settings. */
  pool?: Pool;
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
  const { namespace: ns = 'shoal', timeoutMs = 2000, table = 'shoal_bus' } = options;
  assertPlainTable(table, 'postgres bus');
  if (!options.url && !options.pool) {
    throw new ConfigError('postgres bus needs a `url` (postgres://user@host:5432/db) or an existing `pool`.');
  }
  const historySize = positiveInt(options.historySize, DEFAULT_HISTORY_SIZE);
  const ttlMs = positiveInt(options.historyTtlMs, DEFAULT_HISTORY_TTL_MS);
  const lagGraceMs = Math.max(0, options.lagGraceMs ?? 30_000);
  const sql = postgresBusSql(table);
  const notify = notifyChannel(table, ns);
  const pg = await importOptional<PgModule>('pg', 'The PostgreSQL message bus (SHOAL_BUS=postgres://…)');
  const connection: ClientConfig = options.pool
    ? { ...options.pool.options }
    : { connectionString: options.url, connectionTimeoutMillis: timeoutMs, keepAlive: true };
  const owned = options.pool === undefined;
  const pool = options.pool ?? new pg.Pool({ ...connection, max: 10, query_timeout: timeoutMs });
  hearPoolErrors(pool, owned);

  let closed = false;
  let handler: MessageHandler | undefined;
  const subscribed = new Map<string, Subscription>();
  let trimmer: NodeJS.Timeout | undefined;

  const query = pgQuery(pool, timeoutMs, sql.schema, () => closed);

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
          deliver(handler, m);
        }
        if (got.messages.length === FETCH_BATCH) sub.again = true;
      } while (sub.again && !closed);
    } catch {
      // The next notification, reconnect or this retry fills it in: nothing is lost while delivered stays put.
      if (!closed) setTimeout(() => void fetch(channel), 250).unref();
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

  const trim = () => {
    const cutoff = Date.now() - ttlMs;
    query('trim', sql.trimOld, [ns, cutoff])
      .then(() => query('trim', sql.forgetIdle, [ns, cutoff]))
      .catch(() => {}); // retried on the next tick
  };

  return {
    kind: 'postgres',
    capabilities: { history: true, shared: true },

    async publish(channel, input) {
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
      const offset = Number(row.seq);
      // Amortised: the read window is exact anyway, so physical trimming only bounds the table.
      if (offset % 16 === 0) {
        query('trim', sql.trimChannel, [ns, channel, offset - historySize, now - lagGraceMs]).catch(() => {});
      }
      if (!trimmer) {
        trimmer = setInterval(trim, Math.min(60_000, Math.max(1000, ttlMs / 10)));
        trimmer.unref();
      }
      return { channel, epoch: row.epoch, offset, event: input.event, data: input.data, publishedAt: now };
    },

    async subscribe(channel) {
      if (closed)
        throw new BusUnavailableError('postgres', 'subscribe after close(): open a new bus with createBus().');
      if (subscribed.has(channel)) return;
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

    async unsubscribe(channel) {
      subscribed.delete(channel);
    },

    onMessage(h) {
      handler = h;
    },

    async read(channel, after, readOptions = {}): Promise<ReadResult> {
      // The window never holds more than historySize messages after any offset.
      const limit = positiveInt(readOptions.limit, historySize);
      const got = await readRows(channel, after, limit);
      if (readOptions.epoch !== undefined && readOptions.epoch !== got.epoch) {
        return { epoch: got.epoch, messages: [], complete: false };
      }
      const complete = isComplete(after, got.last, historySize, got.messages[0]?.offset);
      return { epoch: got.epoch, messages: complete ? got.messages : [], complete };
    },

    async position(channel): Promise<Position> {
      const { epoch, last } = await head('position', channel);
      return { epoch, offset: last };
    },

    async ping() {
      await query('ping', 'SELECT 1', []);
    },

    async close() {
      if (closed) return;
      closed = true;
      subscribed.clear();
      clearInterval(trimmer);
      await listener.close();
      if (owned) await pool.end();
    },
  } satisfies Bus;
}
