import type { Bus, BusMessage } from '../bus/contract.js';
import { CHANNEL_RULE, INTERNAL_EVENT_PREFIX, isInternalChannel, isValidChannel } from '../protocol/channels.js';
import type { Cursor } from '../protocol/messages.js';

/**
 * The server API's calls on the bus, shared by the Node publisher and the gateway's HTTP routes so
 * both check input the same way: bad input throws a TypeError with one line saying what was wrong,
 * before anything is published.
 */

/** Bad input to a server call: its message says, in one line, what was wrong. */
export class BadCallError extends TypeError {
  override name = 'BadCallError';
}

/** At most this many messages per history call; the bus's own window (historySize, TTL) bounds it too. */
export const MAX_HISTORY_LIMIT = 1000;
export const DEFAULT_HISTORY_LIMIT = 100;
/** At most this many channels in one publish. */
export const MAX_PUBLISH_CHANNELS = 100;

export interface HistoryOptions {
  /** How many messages at most (default 100, at most 1000). */
  limit?: number;
  /** Messages after this position, oldest first; without it, the newest `limit` messages. */
  since?: { epoch: string; offset: number };
}

export interface HistoryMessage {
  epoch: string;
  offset: number;
  event: string;
  /** The published data, decoded. */
  data: unknown;
}

export interface HistoryAnswer {
  messages: HistoryMessage[];
  /** The channel's current position: a client that shows `messages` resumes from here. */
  epoch: string;
  offset: number;
  /**
   * false when the answer has a gap: `since` is from another epoch or older than the history
   * window keeps (messages is then empty: reload the state), or fewer than the last `limit`
   * messages are still kept.
   */
  complete: boolean;
}

/** The channel, checked to be an app channel a server call may name. */
export function appChannel(channel: unknown, field = 'channel'): string {
  if (!isValidChannel(channel)) throw new BadCallError(`${field} must be ${CHANNEL_RULE}`);
  if (isInternalChannel(channel)) {
    throw new BadCallError(`${field} "${channel}" is internal to shoal: use your own channels`);
  }
  return channel;
}

export function appEvent(event: unknown): string {
  if (typeof event !== 'string' || !event || event.startsWith(INTERNAL_EVENT_PREFIX)) {
    throw new BadCallError(`event must be a non-empty string not starting with "${INTERNAL_EVENT_PREFIX}"`);
  }
  return event;
}

/** Publishes one event to several channels; every channel is checked before the first publish. */
export async function broadcast(bus: Bus, channels: unknown, event: unknown, data: unknown): Promise<BusMessage[]> {
  if (!Array.isArray(channels) || channels.length === 0 || channels.length > MAX_PUBLISH_CHANNELS) {
    throw new BadCallError(`channels must be an array of 1 to ${MAX_PUBLISH_CHANNELS} channel names`);
  }
  const names = channels.map((c, i) => appChannel(c, `channels[${i}]`));
  const name = appEvent(event);
  const encoded = JSON.stringify(data ?? null);
  return Promise.all([...new Set(names)].map((channel) => bus.publish(channel, { event: name, data: encoded })));
}

export function checkHistoryOptions(o: unknown): HistoryOptions {
  if (o === undefined) return {};
  if (typeof o !== 'object' || o === null) throw new BadCallError('history options must be an object');
  const { limit, since } = o as Record<string, unknown>;
  if (
    limit !== undefined &&
    !(Number.isSafeInteger(limit) && (limit as number) >= 1 && (limit as number) <= MAX_HISTORY_LIMIT)
  ) {
    throw new BadCallError(`limit must be an integer from 1 to ${MAX_HISTORY_LIMIT}`);
  }
  if (since !== undefined) {
    const s = since as Record<string, unknown> | null;
    const ok =
      typeof s === 'object' &&
      s !== null &&
      typeof s.epoch === 'string' &&
      Number.isSafeInteger(s.offset) &&
      (s.offset as number) >= 0;
    if (!ok)
      throw new BadCallError(
        'since must be {"epoch": string, "offset": integer ≥ 0} (from a message or an earlier answer)',
      );
  }
  return {
    ...(limit !== undefined ? { limit: limit as number } : {}),
    ...(since ? { since: since as HistoryOptions['since'] & {} } : {}),
  };
}

/** A channel's history: after `since`, or the newest `limit` messages the bus still keeps. */
export async function readHistory(bus: Bus, channel: unknown, options?: unknown): Promise<HistoryAnswer> {
  const name = appChannel(channel);
  const { limit = DEFAULT_HISTORY_LIMIT, since } = checkHistoryOptions(options);
  return historyOf(bus, name, limit, since);
}

/**
 * The newest `limit` messages of a channel, or those after `since`, within what the bus's window
 * keeps: for the server API and for clients' `history` requests (checked by their callers).
 */
export async function historyOf(bus: Bus, name: string, limit: number, since?: Cursor): Promise<HistoryAnswer> {
  const head = await bus.position(name);
  const answer = (messages: BusMessage[], complete: boolean): HistoryAnswer => ({
    messages: messages.map((m) => ({ epoch: m.epoch, offset: m.offset, event: m.event, data: decode(m.data) })),
    epoch: head.epoch,
    offset: head.offset,
    complete,
  });
  if (since) {
    const r = await bus.read(name, since.offset, { epoch: since.epoch, limit });
    return answer(r.messages, r.complete);
  }
  if (head.offset === 0) return answer([], true);
  const want = Math.min(limit, head.offset);
  const r = await bus.read(name, head.offset - want, { epoch: head.epoch, limit: want });
  if (r.complete) return answer(r.messages, true);
  // The window keeps fewer than `limit`: find where it starts (reads of one message, at most ~10
  // for a window of 1000) and answer what it keeps, flagged incomplete.
  let lo = head.offset - want; // not kept
  let hi = head.offset; // reading after the newest is always complete
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await bus.read(name, mid, { epoch: head.epoch, limit: 1 })).complete) hi = mid;
    else lo = mid;
  }
  const kept = await bus.read(name, hi, { epoch: head.epoch, limit: head.offset - hi });
  return answer(kept.complete ? kept.messages : [], false);
}

/** Data the bus holds is JSON text; anything else (written by hand on the backend) comes back as the text. */
function decode(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}
