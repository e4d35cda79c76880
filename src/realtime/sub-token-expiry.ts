import type { Connection } from './connection.js';
import type { GatewayParts } from './parts.js';

/** Per connection, the channels it joined with a subscription token and when that token expires. */
const expiries = new WeakMap<Connection, Map<string, number>>();
/** setTimeout's longest delay; a later expiry is re-armed when it fires. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * A channel joined with a subscription token is left when the token expires: the client gets
 * `unsubscribed` with reason "token expired" (and may subscribe again with a fresh token, which
 * replaces this expiry). Counted as `shoal_gateway_token_refusals_total{stage="open", reason="expired"}`.
 */
export function scheduleSubscriptionExpiry(p: GatewayParts, c: Connection, channel: string, expiresAt: number): void {
  let byChannel = expiries.get(c);
  if (!byChannel) {
    byChannel = new Map();
    expiries.set(c, byChannel);
  }
  byChannel.set(channel, expiresAt);
  arm(p, c, channel, expiresAt);
}

function arm(p: GatewayParts, c: Connection, channel: string, expiresAt: number): void {
  const delay = Math.min(MAX_DELAY, Math.max(0, expiresAt - Date.now()));
  setTimeout(() => {
    const current = expiries.get(c)?.get(channel);
    // Closed, left, or joined again with a fresh token: nothing to do for this timer.
    if (c.closed || current !== expiresAt || !c.channels.has(channel)) return;
    if (Date.now() < expiresAt) return arm(p, c, channel, expiresAt);
    expiries.get(c)?.delete(channel);
    p.metrics.tokenRefusals.inc({ stage: 'open', reason: 'expired' });
    p.registry.leave(c, channel);
    c.send({ type: 'unsubscribed', channel, reason: 'token expired' });
  }, delay).unref();
}

/** The channel was joined without a token (or left): its old token no longer ends it. */
export function forgetSubscriptionExpiry(c: Connection, channel: string): void {
  expiries.get(c)?.delete(channel);
}
