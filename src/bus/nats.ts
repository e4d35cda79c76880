import { keyedLanes } from '../core/lanes.js';
import { importOptional } from '../core/lazy-import.js';
import { settleWithin } from '../core/timing.js';
import { BusBase, type BusDriver } from './base.js';
import type { Bus, BusMessage, BusOptions } from './contract.js';
import { consumerPerChannel, createConsumer } from './nats-consumer.js';
import { republishedLive } from './nats-live.js';
import { decodeEntry, natsLog } from './nats-log.js';
import { defaultReplicas, parseNatsUrl, streamName } from './nats-names.js';
import { OrderedDelivery } from './ordered-delivery.js';

export { streamName, token } from './nats-names.js';

export interface NatsBusOptions extends BusOptions {
  /**
   * `nats://[user:pass@]host:4222`, several comma-separated for a cluster
   * (`nats://a:4222,b:4222,c:4222?replicas=3`); `?replicas=3` sets the stream's replicas (default:
   * one per server listed, at most 3), `?noRandomize=1` tries the servers in the order given.
   */
  url: string;
  /**
   * JetStream replicas of the namespace's stream (wins over `?replicas`). The bus creates the stream
   * with them, and changes an existing stream that has other replicas to them (JetStream moves a
   * clustered stream in place; the change is logged). Default: one per server the URL lists, at
   * most 3 (`nats://a,b,c` → 3, `nats://a` → 1); the default raises an existing stream's replicas,
   * never lowers them.
   */
  replicas?: number;
}

/**
 * NATS JetStream bus over one stream per namespace (nats-log.ts: markers, epochs, offsets by
 * compare-and-set). Live delivery: the stream republishes each stored entry to a plain subject
 * per channel, and a plain subscription per subscribed channel receives it; gaps and reconnects
 * are caught up from the stream (nats-live.ts). No JetStream consumer per channel: the server
 * holds only interest. A stream made by an older version (which cannot be changed to republish)
 * keeps the former delivery, one JetStream consumer per subscribed channel.
 */
const LEGACY_STREAM =
  'bus stream was made by an older shoal without republish, which a stream cannot be changed to: live delivery takes one JetStream consumer per subscribed channel. Delete the stream when no client uses it to lift that (history starts over under a new epoch)';

export async function natsBus(options: NatsBusOptions): Promise<Bus> {
  const { servers, user, pass, tls, replicas, noRandomize, label } = parseNatsUrl(options.url);
  const nats = await importOptional<typeof import('nats')>('nats', 'The NATS message bus');
  let lastError = (): unknown => undefined;
  let advice = () => 'Check that nats-server is running and reachable';
  const base = new BusBase(options, {
    label,
    advice: () => advice(),
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
    defaultReplicas: defaultReplicas(servers),
    logger: base.logger,
    historySize,
    ttlMs: base.historyTtlMs,
    timeoutMs,
    isClosed: () => base.closed,
  });
  lastError = log.lastError;
  advice = log.advice;
  const { subjectOf, withLink, fetchTail } = log;

  // One in-flight publish per channel per client: they would only race each other.
  const inLane = keyedLanes<string>();

  const delivery = new OrderedDelivery(
    (channel, after) => base.window(driver, 'read', channel, after, 500),
    base.currentHandler,
    base.logger,
  );
  const live = republishedLive({
    connection: () => withLink(async (l) => l.nc),
    liveSubjectOf: log.liveSubjectOf,
    position: (channel) => base.call('subscribe', (deadline) => driver.head(channel, deadline)),
    learn: log.learn,
    delivery,
    closed: () => base.closed,
    logger: base.logger,
  });
  const perChannel = consumerPerChannel({
    call: base.call.bind(base),
    withLink,
    fetchTail,
    subjectOf,
    stream,
    learn: log.learn,
    deliver: base.deliver,
  });
  let warnedLegacy = false;

  const driver: BusDriver = {
    kind: 'nats',
    capabilities: { history: true, shared: true },
    reportsSends: true,

    // The deadline runs from the call, not from the turn in the lane: publishes queued behind a
    // stuck one must fail together within timeoutMs, not one timeout after another.
    append: (channel, input, deadline, attempt) =>
      inLane(channel, () => withLink((l) => log.append(l, channel, input.event, input.data, deadline, attempt))),

    async listen(channel) {
      await base.call('subscribe', () => withLink(async () => undefined));
      if (log.republishes()) return live.listen(channel);
      if (!warnedLegacy) {
        warnedLegacy = true;
        base.logger.warn({ stream }, LEGACY_STREAM);
      }
      return perChannel.listen(channel);
    },

    async unlisten(channel) {
      if (delivery.has(channel)) return live.unlisten(channel);
      return perChannel.unlisten(channel);
    },

    range: (channel, after, limit, deadline, wanted) =>
      withLink(async (l) => {
        const tail = await fetchTail(l, channel);
        const none = { epoch: tail.epoch, last: tail.offset, messages: [] };
        // Incomplete or empty whatever the log holds: no scan needed.
        if (wanted !== undefined && wanted !== tail.epoch) return none;
        if (after >= tail.offset || after < tail.offset - historySize) return none;
        const upTo = Math.min(tail.offset, after + limit);
        // Bounded: the subject holds at most `physical` entries. (A scan, since JetStream cannot seek by our offset.)
        const name = await createConsumer(l, { stream, subject: subjectOf(channel) }, 1, deadline);
        const consumer = await l.js.consumers.get(stream, name);
        const batch = await consumer.fetch({ max_messages: log.physical(), expires: Math.max(1000, timeoutMs / 2) });
        const messages: BusMessage[] = [];
        for await (const m of batch) {
          const [epoch, offset, event, data, publishedAt] = decodeEntry(m);
          // An offset already taken is an append that lost a race on a replicated stream (nats-log.ts
          // ownsOffset) and was never acknowledged: the first entry in the stream holds the offset.
          const taken = messages.at(-1)?.offset ?? after;
          if (epoch === tail.epoch && offset > taken) {
            // The first one found decides completeness: one past `after`, or there is a gap.
            if (messages.length === 0 && offset !== after + 1) break;
            if (offset <= upTo) messages.push({ channel, epoch, offset, event, data, publishedAt });
          }
          if (offset >= upTo || m.seq >= tail.seq || m.info.pending === 0) break;
        }
        await l.jsm.consumers.delete(stream, name).catch(() => false);
        return { ...none, messages };
      }),

    head: (channel) =>
      withLink(async (l) => {
        const tail = await fetchTail(l, channel);
        return { epoch: tail.epoch, offset: tail.offset };
      }),

    ping: () => withLink((l) => l.nc.flush()),

    async close() {
      live.close();
      await perChannel.close();
      const l = await log.current()?.catch(() => undefined);
      if (l) await settleWithin(l.nc.close(), timeoutMs);
    },
  };
  return base.bus(driver);
}
