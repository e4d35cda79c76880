import { hashId } from '../core/ids.js';

/**
 * A session's channel is named after a hash of its id: channel names reach page
 * JavaScript (hello, subscribed, SSE ids) and the bus backend, the raw id must not.
 */
export function sessionChannel(sessionId: string): string {
  return `session:${hashId(sessionId)}`;
}
