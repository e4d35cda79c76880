import { randomUUID } from 'node:crypto';
import { BusUnavailableError } from '../core/errors.js';
import type { Bus, BusMessage, BusOptions, MessageHandler, Position, ReadResult } from './contract.js';
import { DEFAULT_HISTORY_SIZE, DEFAULT_HISTORY_TTL_MS, deliver, isComplete, positiveInt } from './history.js';

interface ChannelLog {
  last: number;
  /** Contiguous offsets, oldest first. */
  messages: BusMessage[];
}

interface Client {
  channels: Set<string>;
  handler: MessageHandler | undefined;
}

interface Hub {
  /** One incarnation per process: the log dies with it. */
  epoch: string;
  logs: Map<string, ChannelLog>;
  clients: Set<Client>;
}

// Per namespace and process-wide, so every memoryBus() of one namespace in this process talks to the others.
const hubs = new Map<string, Hub>();

function hubFor(namespace: string): Hub {
  let hub = hubs.get(namespace);
  if (!hub) {
    hub = { epoch: randomUUID(), logs: new Map(), clients: new Set() };
    hubs.set(namespace, hub);
  }
  return hub;
}

/**
 * Single-process bus: the reference implementation of the contract, for tests
 * and one-process apps. Buses of one namespace in this process share channels;
 * nothing reaches other processes.
 */
export function memoryBus(options: BusOptions = {}): Bus {
  const hub = hubFor(options.namespace ?? 'shoal');
  const historySize = positiveInt(options.historySize, DEFAULT_HISTORY_SIZE);
  const ttlMs = positiveInt(options.historyTtlMs, DEFAULT_HISTORY_TTL_MS);
  const self: Client = { channels: new Set(), handler: undefined };
  let open = true;
  hub.clients.add(self);

  const live = () => {
    if (!open) throw new BusUnavailableError('memory', 'this bus was closed; open a new one with createBus()');
  };
  const logOf = (channel: string): ChannelLog => {
    let log = hub.logs.get(channel);
    if (!log) {
      log = { last: 0, messages: [] };
      hub.logs.set(channel, log);
    }
    return log;
  };
  const trim = (log: ChannelLog, now: number) => {
    const cutoff = now - ttlMs;
    let drop = Math.max(0, log.messages.length - historySize);
    while (drop < log.messages.length && (log.messages[drop]?.publishedAt ?? now) < cutoff) drop++;
    if (drop > 0) log.messages.splice(0, drop);
  };

  return {
    kind: 'memory',
    capabilities: { history: true, shared: false },

    async publish(channel, input) {
      live();
      const log = logOf(channel);
      const now = Date.now();
      const message: BusMessage = {
        channel,
        epoch: hub.epoch,
        offset: ++log.last,
        event: input.event,
        data: input.data,
        publishedAt: now,
      };
      log.messages.push(message);
      trim(log, now);
      for (const client of hub.clients) {
        if (!client.channels.has(channel)) continue;
        // Asynchronous like every other bus: the publisher never runs subscriber code.
        queueMicrotask(() => {
          if (client.channels.has(channel)) deliver(client.handler, { ...message });
        });
      }
      return { ...message };
    },

    async subscribe(channel) {
      live();
      self.channels.add(channel);
    },

    async unsubscribe(channel) {
      live();
      self.channels.delete(channel);
    },

    onMessage(handler) {
      self.handler = handler;
    },

    async read(channel, after, readOptions = {}): Promise<ReadResult> {
      live();
      const log = logOf(channel);
      if (readOptions.epoch !== undefined && readOptions.epoch !== hub.epoch) {
        return { epoch: hub.epoch, messages: [], complete: false };
      }
      trim(log, Date.now());
      const first = log.messages[0]?.offset ?? log.last + 1;
      const start = Math.max(0, after + 1 - first);
      const limit = positiveInt(readOptions.limit, Number.MAX_SAFE_INTEGER);
      const messages = log.messages.slice(start, start + limit).map((m) => ({ ...m }));
      const complete = isComplete(after, log.last, historySize, messages[0]?.offset);
      return { epoch: hub.epoch, messages: complete ? messages : [], complete };
    },

    async position(channel): Promise<Position> {
      live();
      return { epoch: hub.epoch, offset: hub.logs.get(channel)?.last ?? 0 };
    },

    async ping() {
      live();
    },

    async close() {
      open = false;
      self.channels.clear();
      hub.clients.delete(self);
    },
  } satisfies Bus;
}
