import { CloseCode, isAppCloseCode, isFinalCloseCode } from '../protocol/index.js';
import type { Backoff } from './backoff.js';
import type { TransportChoice } from './transport-choice.js';

/** What the client does after its transport closed with `code`. */
export type AfterClose =
  /** The token expired before a refresh got through: reconnect with a new one, resuming from the cursors. */
  | { action: 'renew'; delay: number }
  /** No session to use (it ended, or there never was one), or the app disconnected it: retrying cannot help. */
  | { action: 'end'; disconnected: boolean }
  | { action: 'retry'; delay: number };

export function afterClose(
  code: number,
  o: { opened: boolean; openedAt: number; renewable: boolean; backoff: Backoff; choice: TransportChoice },
): AfterClose {
  if (code === CloseCode.TokenExpired && o.renewable) return { action: 'renew', delay: o.backoff.next() };
  if (isFinalCloseCode(code)) return { action: 'end', disconnected: isAppCloseCode(code) };
  if (o.opened && Date.now() - o.openedAt >= o.backoff.stableMs) o.backoff.reset();
  if (!o.opened) o.choice.failedToOpen();
  // A restarting gateway (1012) asks for a prompt reconnect to another one.
  return { action: 'retry', delay: code === CloseCode.Restart ? o.backoff.prompt() : o.backoff.next() };
}
