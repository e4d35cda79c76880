import { randomUUID } from 'node:crypto';
import { BusBase } from './base.js';
import type { Bus, BusMessage, BusOptions } from './contract.js';

interface ChannelLog {
  last: number;
  /** Contiguous offsets, oldest first. */
  messages: BusMessage[];
}

interface Client {
  channels: Set<string>;
  deliver: (message: BusMessage) => void;
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
  const base = new BusBase(options, { label: 'memory', advice: 'This is an in-process bus' });
  const { historySize, historyTtlMs } = base;
  const hub = hubFor(base.namespace);
  const self: Client = { channels: new Set(), deliver: base.deliver };
  hub.clients.add(self);

  const logOf = (channel: string): ChannelLog => {
    let log = hub.logs.get(channel);
    if (!log) {
      log = { last: 0, messages: [] };
      hub.logs.set(channel, log);
    }
    return log;
  };
  const trim = (log: ChannelLog, now: number) => {
    const cutoff = now - historyTtlMs;
    let drop = Math.max(0, log.messages.length - historySize);
    while (drop < log.messages.length && (log.messages[drop]?.publishedAt ?? now) < cutoff) drop++;
    if (drop > 0) log.messages.splice(0, drop);
  };

  return base.bus({
    kind: 'memory',
    capabilities: { history: true, shared: false },

    async append(channel, input) {
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
          if (client.channels.has(channel)) client.deliver({ ...message });
        });
      }
      return { ...message };
    },

    async range(channel, after, limit) {
      const log = logOf(channel);
      trim(log, Date.now());
      const first = log.messages[0]?.offset ?? log.last + 1;
      const start = Math.max(0, after + 1 - first);
      const messages = log.messages.slice(start, start + limit).map((m) => ({ ...m }));
      return { epoch: hub.epoch, last: log.last, messages };
    },

    async head(channel) {
      return { epoch: hub.epoch, offset: hub.logs.get(channel)?.last ?? 0 };
    },

    async listen(channel) {
      self.channels.add(channel);
    },

    async unlisten(channel) {
      self.channels.delete(channel);
    },

    async ping() {},

    async close() {
      self.channels.clear();
      hub.clients.delete(self);
    },
  });
}
