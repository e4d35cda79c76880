import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { withDeadline } from '../core/deadline.js';
import { BusUnavailableError, ConfigError } from '../core/errors.js';
import { failureDetail, openRedis } from '../core/redis-client.js';
import { type LuaScript, runScript, luaScript as script } from '../core/redis-script.js';
import { settleWithin } from '../core/timing.js';
import { redact } from '../core/url.js';
import type { Bus, BusMessage, BusOptions, MessageHandler, Position, ReadResult } from './contract.js';
import { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL_MS, isComplete, positiveInt } from './history.js';
import { type Backlog, OrderedDelivery, warnCatchUp } from './ordered-delivery.js';

export interface RedisBusOptions extends BusOptions {
  /** `redis://…`, `rediss://…`, `redis+cluster://h1:p1,h2:p2` or `redis+sentinel://s1:p1,s2:p2/name`; ignored when `client` is given. */
  url?: string;
  /**
   * An existing connection (Redis or Cluster). The bus duplicates it for its subscriber (on a Cluster,
   * with `shardedSubscribers: true`, whatever the given one says) and never closes it.
   */
  client?: Redis | Cluster;
  /**
   * Sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis 7+), needed on Redis Cluster so a channel's
   * messages stay on the node holding its keys. Default: on when the server is 7 or newer.
   */
  sharded?: boolean;
}

// A missing or lost log (never used, expired, FLUSHALL, evicted) starts over under a new epoch.
// The epoch also names the server's replication history (master_replid): replication is
// asynchronous, so a replica promoted after a failover may lack the old master's last entries
// and would hand out their offsets again, to different messages. A new replication id turns
// that into a new epoch, which resuming clients are told about (recovered: false) instead of
// skipping the reused offsets as already seen. INFO refused (an ACL): the stored epoch alone.
const ENSURE = `
local epoch = redis.call('GET', KEYS[3])
if not epoch or redis.call('EXISTS', KEYS[1]) == 0 then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[3], epoch, 'PX', ARGV[2])
  redis.call('SET', KEYS[1], 0, 'PX', ARGV[2])
end
local info = redis.pcall('INFO', 'replication')
if type(info) == 'string' then
  local replid = string.match(info, 'master_replid:(%x+)')
  if replid then epoch = epoch .. '.' .. string.sub(replid, 1, 12) end
end
`;

/** KEYS seq, log, epoch · ARGV newEpoch, ttlMs, maxlen, publishedAt, event, data, liveChannel, publishCmd, liveBody. */
const PUBLISH = script(`${ENSURE}
local offset = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], offset .. '-0', 't', ARGV[4], 'e', ARGV[5], 'd', ARGV[6])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
redis.call(ARGV[8], ARGV[7], epoch .. '|' .. offset .. '|' .. ARGV[9])
return {epoch, offset}`);

/** KEYS seq, log, epoch · ARGV newEpoch, ttlMs, after, limit → {epoch, last, entries}. One snapshot. */
const READ = script(`${ENSURE}
local last = tonumber(redis.call('GET', KEYS[1]))
local entries = {}
if tonumber(ARGV[4]) > 0 and tonumber(ARGV[3]) < last then
  entries = redis.call('XRANGE', KEYS[2], (ARGV[3] + 1) .. '-0', '+', 'COUNT', ARGV[4])
end
return {epoch, last, entries}`);

type StreamEntry = [id: string, fields: string[]];

/**
 * Redis bus: per channel a counter, a stream (history) and an epoch key under one hash tag,
 * so one Lua script assigns the offset, appends, and publishes atomically — pub/sub order
 * is offset order. A separate subscriber connection receives live messages; after it
 * reconnects, every channel catches up from its last delivered offset through XRANGE.
 */
export async function redisBus(options: RedisBusOptions): Promise<Bus> {
  const ns = options.namespace ?? 'shoal';
  const historySize = positiveInt(options.historySize, DEFAULT_HISTORY_SIZE);
  const ttlMs = positiveInt(options.historyTtlMs, DEFAULT_HISTORY_TTL_MS);
  const timeoutMs = positiveInt(options.timeoutMs, 2000);
  if (/[{}|]/.test(ns)) throw new ConfigError('redis bus: namespace must not contain {, } or |');
  if (!options.client && !options.url) {
    throw new ConfigError('redis bus: pass `url` (redis://host:6379) or an ioredis `client`');
  }
  const where = options.client ? 'the given client' : redact(options.url ?? '');
  const label = `redis (${where})`;

  let lastError: Error | undefined;
  const remember = (err: Error) => {
    lastError = err;
  };
  const client: Redis | Cluster =
    options.client ?? (await openRedis(options.url ?? '', 'The Redis message bus', timeoutMs, remember));

  let closed = false;
  const call = async <T>(what: string, op: () => Promise<T>): Promise<T> => {
    if (closed) throw new BusUnavailableError(label, 'this bus was closed; open a new one with createBus()');
    try {
      return await withDeadline(op, timeoutMs);
    } catch (err) {
      throw new BusUnavailableError(
        label,
        `${what} failed: ${failureDetail(err, lastError)}. Check that Redis is running and reachable, or raise timeoutMs.`,
        { cause: err },
      );
    }
  };
  const run = (what: string, s: LuaScript, channel: string, args: (string | number)[]) =>
    call(what, () => {
      const keys = keysOf(channel);
      return runScript(client, s, [keys.seq, keys.log, keys.epoch], [randomUUID(), ttlMs, ...args]);
    });

  // One hash tag per channel: the script's keys and the sharded pub/sub channel share a slot.
  const keysOf = (channel: string) => {
    const tag = `shoal:{${ns}:${channel}}`;
    return { seq: `${tag}:seq`, log: `${tag}:log`, epoch: `${tag}:epoch`, live: `${tag}:live` };
  };

  let sharded = options.sharded;
  const publishCommand = async (): Promise<string> => {
    if (sharded === undefined) {
      const info = await call('server version check', () =>
        // Refused by an ACL (managed Redis): assume the lowest common denominator.
        client.info('server').catch((err: Error) => (err.name === 'ReplyError' ? '' : Promise.reject(err))),
      );
      sharded = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0) >= 7;
    }
    return sharded ? 'SPUBLISH' : 'PUBLISH';
  };

  const readRaw = async (channel: string, after: number, limit: number) => {
    const [epoch, last, entries] = (await run('read', READ, channel, [after, limit])) as [
      string,
      number,
      StreamEntry[],
    ];
    const cutoff = Date.now() - ttlMs;
    const messages = entries.map((e) => toMessage(channel, epoch, e)).filter((m) => m.publishedAt >= cutoff);
    return { epoch, last: Number(last), messages };
  };
  const position = async (channel: string): Promise<Position> => {
    const r = await readRaw(channel, 0, 0);
    return { epoch: r.epoch, offset: r.last };
  };
  const backlog = async (channel: string, after: number): Promise<Backlog> => {
    const r = await readRaw(channel, after, 500);
    return { ...r, complete: isComplete(after, r.last, historySize, r.messages[0]?.offset) };
  };

  let handler: MessageHandler | undefined;
  const delivery = new OrderedDelivery(backlog, () => handler, warnCatchUp('redis'));
  const liveNames = new Map<string, string>();
  /** Per channel, the epoch string of the last live message: reused while the epoch lasts. */
  const liveEpochs = new Map<string, string>();
  let subscriber: Redis | Cluster | undefined;
  let subscribing: Promise<Redis | Cluster> | undefined;
  const subscriberOf = (): Promise<Redis | Cluster> => {
    subscribing ??= openSubscriber();
    subscribing.catch(() => {
      subscribing = undefined;
    });
    return subscribing;
  };
  const openSubscriber = async (): Promise<Redis | Cluster> => {
    const command = await publishCommand();
    // Subscriptions are renewed below, after which the missed messages are replayed in order.
    const sub = client.isCluster
      ? // On a Cluster, SSUBSCRIBE must reach the master of the channel's slot: one subscriber per master.
        (client as Cluster).duplicate([], { shardedSubscribers: command === 'SPUBLISH' })
      : (client as Redis).duplicate({ autoResubscribe: false });
    sub.on('error', remember);
    if (client.isCluster && command === 'SPUBLISH') {
      // ioredis re-subscribes by itself once a failed-over slot has its new master: replay what was missed.
      sub.on('subscribersReady', () => {
        for (const channel of delivery.channels) delivery.resync(channel);
      });
    }
    const onMessage = (live: string, body: string) => {
      const channel = liveNames.get(live);
      if (channel !== undefined) delivery.push(fromLive(channel, body, liveEpochs));
    };
    sub.on(command === 'SPUBLISH' ? 'smessage' : 'message', onMessage);
    let connectedOnce = false;
    sub.on('ready', () => {
      if (client.isCluster && command === 'SPUBLISH') return; // see subscribersReady above
      if (!connectedOnce) {
        connectedOnce = true;
        return;
      }
      // The old connection's subscriptions died with it: renew them, then replay the blip.
      const names = [...liveNames.keys()];
      if (names.length === 0) return;
      const renew = command === 'SPUBLISH' ? sub.ssubscribe(...names) : sub.subscribe(...names);
      renew.then(
        () => {
          for (const channel of delivery.channels) delivery.resync(channel);
        },
        (err: unknown) => remember(err instanceof Error ? err : new Error(String(err))),
      );
    });
    if (closed) {
      sub.disconnect();
      throw new Error('closed while subscribing');
    }
    subscriber = sub;
    return sub;
  };

  return {
    kind: 'redis',
    capabilities: { history: true, shared: true },

    async publish(channel, input) {
      const command = await publishCommand();
      const publishedAt = Date.now();
      const body = JSON.stringify([input.event, input.data, publishedAt]);
      const { live } = keysOf(channel);
      const args = [historySize, publishedAt, input.event, input.data, live, command, body];
      const [epoch, offset] = (await run('publish', PUBLISH, channel, args)) as [string, number];
      return { channel, epoch, offset: Number(offset), event: input.event, data: input.data, publishedAt };
    },

    async subscribe(channel) {
      if (delivery.has(channel)) return;
      const sub = await call('subscribe', subscriberOf);
      const { live } = keysOf(channel);
      delivery.hold(channel);
      liveNames.set(live, channel);
      try {
        await call('subscribe', async () => {
          await (sharded ? sub.ssubscribe(live) : sub.subscribe(live));
        });
        delivery.start(channel, await position(channel));
      } catch (err) {
        delivery.drop(channel);
        liveNames.delete(live);
        liveEpochs.delete(channel);
        throw err;
      }
    },

    async unsubscribe(channel) {
      if (!delivery.has(channel)) return;
      const { live } = keysOf(channel);
      delivery.drop(channel);
      liveNames.delete(live);
      liveEpochs.delete(channel);
      const sub = subscriber;
      if (sub)
        await call('unsubscribe', async () => void (await (sharded ? sub.sunsubscribe(live) : sub.unsubscribe(live))));
    },

    onMessage(h) {
      handler = h;
    },

    async read(channel, after, readOptions = {}): Promise<ReadResult> {
      const limit = positiveInt(readOptions.limit, historySize);
      const r = await readRaw(channel, after, Math.min(limit, historySize));
      if (readOptions.epoch !== undefined && readOptions.epoch !== r.epoch) {
        return { epoch: r.epoch, messages: [], complete: false };
      }
      const complete = isComplete(after, r.last, historySize, r.messages[0]?.offset);
      return { epoch: r.epoch, messages: complete ? r.messages : [], complete };
    },

    position,

    async ping() {
      await call('ping', () => client.ping());
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const channel of delivery.channels) delivery.drop(channel);
      const quit = async (c: Redis | Cluster) => {
        await settleWithin(c.quit(), timeoutMs);
        c.disconnect();
      };
      if (subscriber) await quit(subscriber);
      if (!options.client) await quit(client);
    },
  } satisfies Bus;
}

function toMessage(channel: string, epoch: string, [id, fields]: StreamEntry): BusMessage {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
  return {
    channel,
    epoch,
    offset: Number.parseInt(id, 10),
    event: f.e ?? '',
    data: f.d ?? '',
    publishedAt: Number(f.t),
  };
}

/**
 * A live message; `epochs` keeps one string per channel's epoch, so every message of an
 * epoch carries the same string object and the per-socket epoch checks of a fan-out
 * compare pointers, not 36 characters each.
 */
function fromLive(channel: string, body: string, epochs: Map<string, string>): BusMessage {
  const first = body.indexOf('|');
  const second = body.indexOf('|', first + 1);
  const [event, data, publishedAt] = JSON.parse(body.slice(second + 1)) as [string, string, number];
  let epoch = epochs.get(channel);
  if (epoch === undefined || epoch.length !== first || !body.startsWith(epoch)) {
    epoch = body.slice(0, first);
    epochs.set(channel, epoch);
  }
  return {
    channel,
    epoch,
    offset: Number(body.slice(first + 1, second)),
    event,
    data,
    publishedAt,
  };
}
