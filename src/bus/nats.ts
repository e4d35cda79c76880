import type { ConsumerMessages, JsMsg } from 'nats';
import { importOptional } from '../core/lazy-import.js';
import { settleWithin } from '../core/timing.js';
import { BusBase } from './base.js';
import type { Bus, BusMessage, BusOptions } from './contract.js';
import { decodeEntry, natsLog } from './nats-log.js';
import { parseNatsUrl, streamName } from './nats-names.js';

export { streamName, token } from './nats-names.js';

export interface NatsBusOptions extends BusOptions {
  /**
   * `nats://[user:pass@]host:4222`, several comma-separated for a cluster (`nats://a:4222,b:4222`);
   * `?replicas=3` sets the stream's replicas, `?noRandomize=1` tries the servers in the order given.
   */
  url: string;
  /** JetStream replicas of the namespace's stream when this client creates it. Default 1. */
  replicas?: number;
}

/**
 * NATS JetStream bus over one stream per namespace (nats-log.ts: markers, epochs, offsets by
 * compare-and-set). Live delivery: an ordered consumer per subscribed channel, which resumes
 * by itself from the last stream sequence after a reconnect.
 */
export async function natsBus(options: NatsBusOptions): Promise<Bus> {
  const { servers, user, pass, tls, replicas, noRandomize, label } = parseNatsUrl(options.url);
  const nats = await importOptional<typeof import('nats')>('nats', 'The NATS message bus');
  let lastError = (): unknown => undefined;
  const base = new BusBase(options, {
    label,
    advice: 'Check that nats-server runs with JetStream enabled (-js) and is reachable',
    lastError: () => lastError(),
  });
  const { historySize, timeoutMs } = base;
  const stream = streamName(base.namespace);
  const log = natsLog({
    nats,
    namespace: base.namespace,
    stream,
    servers,
    user,
    pass,
    tls,
    noRandomize,
    replicas: options.replicas ?? replicas,
    historySize,
    ttlMs: base.historyTtlMs,
    timeoutMs,
    isClosed: () => base.closed,
  });
  lastError = log.lastError;
  const { subjectOf, withLink, fetchTail } = log;

  // One in-flight publish per channel per client: they would only race each other.
  const lanes = new Map<string, Promise<unknown>>();
  const inLane = <T>(channel: string, task: () => Promise<T>): Promise<T> => {
    const prev = lanes.get(channel) ?? Promise.resolve();
    const next = prev.then(task, task);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    lanes.set(channel, settled);
    void settled.then(() => {
      if (lanes.get(channel) === settled) lanes.delete(channel);
    });
    return next;
  };

  const subscriptions = new Map<string, Promise<ConsumerMessages>>();
  const onLive = (channel: string, m: JsMsg) => {
    const [epoch, offset, event, data, publishedAt] = decodeEntry(m);
    log.learn(channel, { epoch, offset, seq: m.seq });
    if (offset === 0 || !subscriptions.has(channel)) return; // a marker, or unsubscribed meanwhile
    base.deliver({ channel, epoch, offset, event, data, publishedAt });
  };

  return base.bus({
    kind: 'nats',
    capabilities: { history: true, shared: true },

    // The deadline runs from the call, not from the turn in the lane: publishes queued behind a
    // stuck one must fail together within timeoutMs, not one timeout after another.
    append: (channel, input) => inLane(channel, () => withLink((l) => log.append(l, channel, input.event, input.data))),

    async listen(channel) {
      const started = base.call('subscribe', () =>
        withLink(async (l) => {
          const tail = await fetchTail(l, channel);
          const consumer = await l.js.consumers.get(stream, {
            filterSubjects: subjectOf(channel),
            opt_start_seq: tail.seq + 1,
          });
          // expires 5 s → idle heartbeats every 2.5 s: a consumer lost with its server (cluster failover) is
          // noticed and recreated in seconds, not after the 30 s default.
          const messages = await consumer.consume({
            callback: (m) => {
              if (subscriptions.get(channel) === started) onLive(channel, m);
            },
            expires: 5000,
          });
          // This attempt timed out (JetStream without a leader answers late) or was replaced meanwhile:
          // a consumer left running would deliver every message again beside the current one.
          if (subscriptions.get(channel) !== started) {
            await messages.close().catch(() => undefined);
            throw new Error('subscribe was abandoned');
          }
          return messages;
        }),
      );
      subscriptions.set(channel, started);
      try {
        await started;
      } catch (err) {
        subscriptions.delete(channel);
        throw err;
      }
    },

    async unlisten(channel) {
      const sub = subscriptions.get(channel);
      if (!sub) return;
      subscriptions.delete(channel);
      const messages = await sub.catch(() => undefined);
      if (messages) await base.call('unsubscribe', () => messages.close().then(() => undefined));
    },

    range: (channel, after, limit, _deadline, wanted) =>
      withLink(async (l) => {
        const tail = await fetchTail(l, channel);
        const none = { epoch: tail.epoch, last: tail.offset, messages: [] };
        // Incomplete or empty whatever the log holds: no scan needed.
        if (wanted !== undefined && wanted !== tail.epoch) return none;
        if (after >= tail.offset || after < tail.offset - historySize) return none;
        const upTo = Math.min(tail.offset, after + limit);
        // Bounded: the subject holds at most `physical` entries. (A scan, since JetStream cannot seek by our offset.)
        const consumer = await l.js.consumers.get(stream, { filterSubjects: subjectOf(channel) });
        const batch = await consumer.fetch({ max_messages: log.physical(), expires: Math.max(1000, timeoutMs / 2) });
        const messages: BusMessage[] = [];
        for await (const m of batch) {
          const [epoch, offset, event, data, publishedAt] = decodeEntry(m);
          if (epoch === tail.epoch && offset > after) {
            // The first one found decides completeness: one past `after`, or there is a gap.
            if (messages.length === 0 && offset !== after + 1) break;
            if (offset <= upTo) messages.push({ channel, epoch, offset, event, data, publishedAt });
          }
          if (offset >= upTo || m.seq >= tail.seq || m.info.pending === 0) break;
        }
        await consumer.delete().catch(() => false);
        return { ...none, messages };
      }),

    head: (channel) =>
      withLink(async (l) => {
        const tail = await fetchTail(l, channel);
        return { epoch: tail.epoch, offset: tail.offset };
      }),

    ping: () => withLink((l) => l.nc.flush()),

    async close() {
      const current = log.current();
      const subs = [...subscriptions.values()];
      subscriptions.clear();
      if (!current) return;
      const l = await current.catch(() => undefined);
      if (!l) return;
      for (const sub of subs) (await sub.catch(() => undefined))?.stop();
      await settleWithin(l.nc.close(), timeoutMs);
    },
  });
}
