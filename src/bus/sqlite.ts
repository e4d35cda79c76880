import { randomUUID } from 'node:crypto';
import { BusUnavailableError } from '../core/errors.js';
import { openSqliteFile, type SqliteRole } from '../core/sqlite-file.js';
import { BusBase, type LogRange } from './base.js';
import type { Bus, BusMessage, BusOptions } from './contract.js';
import { positiveInt } from './history.js';
import { SCHEMA, SQL } from './sqlite-sql.js';

export interface SqliteBusOptions extends BusOptions {
  /** Database file; its directory is created when missing. ":memory:" keeps it private to this process. */
  path: string;
  /** How often a subscribed bus looks for new rows; default 3 ms. */
  pollMs?: number;
  /**
   * How long a row past the history window stays in the file for subscribers
   * whose poller lags behind (an event loop stalled by a burst); default 30 s.
   */
  lagGraceMs?: number;
}

interface Row {
  id: number;
  channel: string;
  epoch: string;
  seq: number;
  event: string;
  data: string;
  published_at: number;
}

const POLL_BATCH = 500;

const ROLE: SqliteRole = {
  feature: 'The SQLite message bus',
  setting: 'SHOAL_BUS',
  instead: 'redis://, postgres:// or nats:// for heavy traffic',
  closed: 'this bus was closed; open a new one with createBus()',
  unavailable: BusUnavailableError,
  addonFallback: 'set SHOAL_BUS to another bus (redis://, postgres://, nats://, amqp://)',
};

/**
 * The embedded default bus: an append-only log in one SQLite file that every
 * process on this machine shares. Publish assigns the offset under the write
 * lock (BEGIN IMMEDIATE), so row ids grow in commit order and a subscriber in
 * any process sees every message by polling "id > last seen" — one index seek
 * when nothing is new.
 */
export async function sqliteBus(options: SqliteBusOptions): Promise<Bus> {
  const base = new BusBase(options, { label: 'sqlite', advice: 'Check that the database file is writable' });
  const ns = base.namespace;
  const pollMs = positiveInt(options.pollMs, 3);
  const lagGraceMs = Math.max(0, options.lagGraceMs ?? 30_000);
  const { db, anonymous, label, guard } = await openSqliteFile(options.path, base.timeoutMs, SCHEMA, ROLE);
  base.label = label;

  const s = {
    bump: db.prepare<{ ns: string; channel: string; epoch: string; now: number }, { epoch: string; last: number }>(
      SQL.bump,
    ),
    append: db.prepare<Omit<Row, 'id'> & { ns: string }>(SQL.append),
    trimChannel: db.prepare<{ ns: string; channel: string; upTo: number; before: number }>(SQL.trimChannel),
    trimOld: db.prepare<{ ns: string; cutoff: number }>(SQL.trimOld),
    // A channel idle past the TTL has no history left; forgetting it gives its next message a new epoch.
    forgetIdle: db.prepare<{ ns: string; cutoff: number }>(SQL.forgetIdle),
    channel: db.prepare<{ ns: string; channel: string }, { epoch: string; last: number }>(SQL.channel),
    pin: db.prepare<{ ns: string; channel: string; epoch: string; now: number }>(SQL.pin),
    after: db.prepare<{ ns: string; channel: string; after: number; limit: number }, Row>(SQL.after),
    poll: db.prepare<{ ns: string; last: number; limit: number }, Row>(SQL.poll),
    maxId: db.prepare<[], { id: number }>(SQL.maxId),
    ping: db.prepare<[], { ok: number }>(SQL.ping),
  };

  const publishTx = db.transaction((channel: string, event: string, data: string): BusMessage => {
    const now = Date.now();
    const head = s.bump.get({ ns, channel, epoch: randomUUID(), now });
    if (!head) throw new Error('channel upsert returned no row');
    s.append.run({ ns, channel, epoch: head.epoch, seq: head.last, event, data, published_at: now });
    return { channel, epoch: head.epoch, offset: head.last, event, data, publishedAt: now };
  });
  const trimTx = db.transaction((cutoff: number) => {
    s.trimOld.run({ ns, cutoff });
    s.forgetIdle.run({ ns, cutoff });
  });
  // A channel's epoch is fixed at first sight, so an empty channel resumes under the epoch its first message carries.
  const head = (channel: string) => {
    const row = s.channel.get({ ns, channel });
    if (row) return row;
    s.pin.run({ ns, channel, epoch: randomUUID(), now: Date.now() });
    return s.channel.get({ ns, channel }) ?? { epoch: '', last: 0 };
  };
  // One snapshot: the head and the rows agree even while others publish.
  const readTx = db.transaction((channel: string, after: number, limit: number, epoch?: string): LogRange => {
    const { epoch: current, last } = s.channel.get({ ns, channel }) ?? { epoch: '', last: 0 };
    const skip = after >= last || (epoch !== undefined && epoch !== current);
    const rows = skip ? [] : s.after.all({ ns, channel, after, limit });
    return { epoch: current, last, messages: rows.map(toMessage) };
  });

  /** channel → highest row id published before subscribe() resolved (not delivered). */
  const subscribed = new Map<string, number>();
  let lastId = 0;
  let poller: NodeJS.Timeout | undefined;

  const poll = () => {
    try {
      for (let batch = 0; batch < 20 && subscribed.size > 0; batch++) {
        const rows = s.poll.all({ ns, last: lastId, limit: POLL_BATCH });
        for (const row of rows) {
          lastId = row.id;
          const from = subscribed.get(row.channel);
          if (from !== undefined && row.id > from) base.deliver(toMessage(row));
        }
        if (rows.length < POLL_BATCH) break;
      }
    } catch {
      // A busy or failing read is retried on the next tick; lastId only moves past delivered rows.
    }
  };

  return base.bus({
    kind: 'sqlite',
    capabilities: { history: true, shared: !anonymous },

    async append(channel, input) {
      return guard(() => publishTx.immediate(channel, input.event, input.data));
    },

    async trimChannel(channel, upTo) {
      guard(() => s.trimChannel.run({ ns, channel, upTo, before: Date.now() - lagGraceMs }));
    },

    async trimAll(cutoff) {
      guard(() => trimTx.immediate(cutoff));
    },

    async listen(channel) {
      const max = guard(() => s.maxId.get()?.id ?? 0);
      if (subscribed.size === 0) lastId = max;
      subscribed.set(channel, max);
      if (!poller) {
        poller = setInterval(poll, pollMs);
        poller.unref();
      }
    },

    async unlisten(channel) {
      subscribed.delete(channel);
      if (subscribed.size === 0 && poller) {
        clearInterval(poller);
        poller = undefined;
      }
    },

    async range(channel, after, limit, _deadline, epoch) {
      return guard(() => {
        head(channel); // pinned outside the read snapshot: upgrading a snapshot to a writer can fail at once
        return readTx.deferred(channel, after, limit, epoch);
      });
    },

    async head(channel) {
      return guard(() => {
        const { epoch, last } = head(channel);
        return { epoch, offset: last };
      });
    },

    async ping() {
      guard(() => s.ping.get());
    },

    async close() {
      clearInterval(poller);
      poller = undefined;
      subscribed.clear();
      if (db.open) db.close();
    },
  });
}

function toMessage(row: Row): BusMessage {
  return {
    channel: row.channel,
    epoch: row.epoch,
    offset: row.seq,
    event: row.event,
    data: row.data,
    publishedAt: row.published_at,
  };
}
