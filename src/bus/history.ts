import type { Logger } from '../core/logger.js';
import type { BusMessage, MessageHandler } from './contract.js';

/** Messages kept per channel when BusOptions.historySize is not given. */
export const DEFAULT_HISTORY_SIZE = 1000;
/** How long history keeps a message when BusOptions.historyTtlMs is not given. */
export const DEFAULT_HISTORY_TTL_MS = 24 * 3_600_000;

/**
 * Whether a replay after `after` is gap-free. The window is exact (the newest
 * `historySize` offsets) whatever a backend physically still holds, so every bus
 * answers a resume the same way; `firstFound` is the lowest offset > after it found.
 */
export function isComplete(after: number, last: number, historySize: number, firstFound: number | undefined): boolean {
  if (after > last) return false; // the caller saw offsets this log never reached
  if (after === last) return true;
  return after >= last - historySize && firstFound === after + 1;
}

/**
 * Calls the subscriber's handler; a throw is reported and delivery goes on, so one
 * bad handler call cannot stall a channel or kill the poller/listener that drives it.
 */
export function deliver(handler: MessageHandler | undefined, message: BusMessage, logger: Logger): void {
  if (!handler) return;
  try {
    handler(message);
  } catch (err) {
    logger.warn(
      { channel: message.channel, offset: message.offset, err: String(err) },
      'the bus onMessage handler threw; delivery continues (catch errors inside the handler)',
    );
  }
}

export function positiveInt(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value >= 1 ? Math.floor(value) : fallback;
}
