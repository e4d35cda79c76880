import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { ConfigError } from '../core/errors.js';
import { openRedis } from '../core/redis-client.js';
import { ReadyGate, sendWhenReady } from '../core/redis-ready.js';
import { type LuaScript, runScript } from '../core/redis-script.js';
import { isUnknownMasterName, redisAdvice } from '../core/redis-sentinel-name.js';
import { settleWithin } from '../core/timing.js';
import { redact } from '../core/url.js';
import { BusBase, type BusDriver, type LogRange } from './base.js';
import type { Bus, BusOptions } from './contract.js';
import { OrderedDelivery } from './ordered-delivery.js';
import { fromLive, PUBLISH, READ, type StreamEntry, toMessage } from './redis-log.js';
import { clusterResubscriber } from './redis-resubscribe.js';

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

/**
 * Redis bus: per channel a counter, a stream (history) and an epoch key under one hash tag,
 * so one Lua script assigns the offset, appends, and publishes atomically — pub/sub order
 * is offset order. A separate subscriber connection receives live messages; after it
 * reconnects, every channel catches up from its last delivered offset through XRANGE.
 */
export async function redisBus(options: RedisBusOptions): Promise<Bus> {
  const where = options.client ? 'the given client' : redact(options.url ?? '');
  let lastError: Error | undefined;
  const remember = (err: Error) => {
    lastError = err;
  };
  const base = new BusBase(options, {
    label: `redis (${where})`,
    advice: () => redisAdvice(lastError, 'Check that Redis is running and reachable'),
    lastError: () => lastError,
  });
  const { namespace: ns, historySize, historyTtlMs: ttlMs, timeoutMs } = base;
  if (/[{}|]/.test(ns)) throw new ConfigError('redis bus: namespace must not contain {, } or |');
  if (!options.client && !options.url) {
    throw new ConfigError('redis bus: pass `url` (redis://host:6379) or an ioredis `client`');
  }
  const client: Redis | Cluster =
    options.client ?? (await openRedis(options.url ?? '', 'The Redis message bus', timeoutMs, remember));
  // Publishes wait for the connection here, not in ioredis's offline queue: one queued there goes out
  // when Redis is back, after its caller was told it failed, and is delivered after later messages.
  const gate = new ReadyGate(client, isUnknownMasterName);

  // One hash tag per channel: the script's keys and the sharded pub/sub channel share a slot.
  const keysOf = (channel: string) => {
    const tag = `shoal:{${ns}:${channel}}`;
    return {
      seq: `${tag}:seq`,
      log: `${tag}:log`,
      epoch: `${tag}:epoch`,
      lineage: `${tag}:lineage`,
      live: `${tag}:live`,
    };
  };
  const run = (s: LuaScript, channel: string, args: (string | number)[]) => {
    const keys = keysOf(channel);
    return runScript(client, s, [keys.seq, keys.log, keys.epoch, keys.lineage], [randomUUID(), ttlMs, ...args]);
  };

  let sharded = options.sharded;
  const publishCommand = async (): Promise<string> => {
    if (sharded === undefined) {
      const info = await base.call('server version check', () =>
        // Refused by an ACL (managed Redis): assume the lowest common denominator.
        client.info('server').catch((err: Error) => (err.name === 'ReplyError' ? '' : Promise.reject(err))),
      );
      sharded = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0) >= 7;
    }
    return sharded ? 'SPUBLISH' : 'PUBLISH';
  };

  const range = async (channel: string, after: number, limit: number, asked?: string): Promise<LogRange> => {
    const [epoch, last, entries, from] = (await run(READ, channel, [after, limit, asked ?? ''])) as [
      string,
      number,
      StreamEntry[],
      number,
    ];
    const cutoff = Date.now() - ttlMs;
    const messages = entries.map((e) => toMessage(channel, epoch, e)).filter((m) => m.publishedAt >= cutoff);
    return from >= 0
      ? { epoch, last: Number(last), messages, from: Number(from) }
      : { epoch, last: Number(last), messages };
  };
  const position = (channel: string) => base.call('subscribe', (deadline) => driver.head(channel, deadline));

  const delivery = new OrderedDelivery(
    (channel, after, epoch) => base.window(driver, 'read', channel, after, 500, epoch),
    base.currentHandler,
    base.logger,
  );
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
      // A failed-over slot has its new master: renew its subscriptions, then replay what was missed.
      const renewAll = clusterResubscriber({
        subscriber: sub as Cluster,
        names: () => [...liveNames.keys()],
        wanted: (live) => liveNames.has(live),
        renewed: (live) => {
          const channel = liveNames.get(live);
          if (channel !== undefined) void delivery.resync(channel);
        },
        closed: () => base.closed,
        logger: base.logger,
      });
      sub.on('subscribersReady', renewAll);
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
          for (const channel of delivery.channels) void delivery.resync(channel);
        },
        (err: unknown) => remember(err instanceof Error ? err : new Error(String(err))),
      );
    });
    if (base.closed) {
      sub.disconnect();
      throw new Error('closed while subscribing');
    }
    subscriber = sub;
    return sub;
  };

  const driver: BusDriver = {
    kind: 'redis',
    capabilities: { history: true, shared: true },

    reportsSends: true,
    async append(channel, input, deadline, attempt) {
      const command = await publishCommand();
      const publishedAt = Date.now();
      const body = JSON.stringify([input.event, input.data, publishedAt]);
      const { live } = keysOf(channel);
      const args = [historySize, publishedAt, input.event, input.data, live, command, body];
      const [epoch, offset] = (await sendWhenReady(gate, client, deadline, () => {
        attempt.sent = true;
        return run(PUBLISH, channel, args).catch((err: Error) => {
          // Refused (READONLY on a demoted primary, OOM): the script stored nothing of the message.
          if (err.name === 'ReplyError') attempt.sent = false;
          throw err;
        });
      })) as [string, number];
      return { channel, epoch, offset: Number(offset), event: input.event, data: input.data, publishedAt };
    },

    range: (channel, after, limit, _deadline, epoch) => range(channel, after, limit, epoch),

    async head(channel) {
      const r = await range(channel, 0, 0);
      return { epoch: r.epoch, offset: r.last };
    },

    async listen(channel) {
      const sub = await base.call('subscribe', subscriberOf);
      const { live } = keysOf(channel);
      delivery.hold(channel);
      liveNames.set(live, channel);
      try {
        await base.call('subscribe', async () => {
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

    async unlisten(channel) {
      const { live } = keysOf(channel);
      delivery.drop(channel);
      liveNames.delete(live);
      liveEpochs.delete(channel);
      const sub = subscriber;
      if (sub) {
        await base.call(
          'unsubscribe',
          async () => void (await (sharded ? sub.sunsubscribe(live) : sub.unsubscribe(live))),
        );
      }
    },

    async ping() {
      await client.ping();
    },

    async close() {
      gate.close();
      for (const channel of delivery.channels) delivery.drop(channel);
      const quit = async (c: Redis | Cluster) => {
        await settleWithin(c.quit(), timeoutMs);
        c.disconnect();
      };
      if (subscriber) await quit(subscriber);
      if (!options.client) await quit(client);
    },
  };
  return base.bus(driver);
}
