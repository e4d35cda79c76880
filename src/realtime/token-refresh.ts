import { isInternalChannel, isPersonalChannel } from '../protocol/channels.js';
import { CloseCode } from '../protocol/messages.js';
import type { Connection } from './connection.js';
import type { GatewayParts } from './parts.js';

/**
 * A fresh connection token on an open connection. It must verify and name the same user as the
 * connection's; then the connection lives until the new `exp`. A refused one closes the
 * connection with its code (4410, 4411) or, when the keys could not be fetched (4013), leaves it
 * open until the old token expires, so the client may try again.
 */
export async function refreshToken(p: GatewayParts, c: Connection, token: string): Promise<void> {
  if (c.identity.source !== 'token') {
    p.metrics.protocolErrors.inc();
    c.send({ type: 'error', code: 'protocol', message: 'refresh is for connections opened with a token' });
    return;
  }
  const verdict = await p.s.tokens.verify(token);
  if (c.closed) return;
  if ('refused' in verdict) {
    const { reason, code, message } = verdict.refused;
    p.metrics.tokenRefusals.inc({ stage: 'refresh', reason });
    if (code === CloseCode.AuthUnavailable) c.send({ type: 'error', code: 'unavailable', message });
    else p.connections.end(c, code, message);
    return;
  }
  const claims = verdict.ok;
  if (claims.user !== c.userId) {
    p.metrics.tokenRefusals.inc({ stage: 'refresh', reason: 'user' });
    p.connections.end(c, CloseCode.TokenInvalid, 'the new token is for another user');
    return;
  }
  c.identity = { ...c.identity, granted: claims.channels, expiresAt: claims.expiresAt };
  p.connections.expiry.schedule(c);
  c.send({ type: 'refreshed', expires: Math.floor(claims.expiresAt / 1000) });
}

/**
 * Whether a subscription token lets this connection join `channel`: it verifies, its `channel`
 * claim is the channel, and its `sub` is the connection's user ('' for a connection without
 * one). Never for personal or internal channels. A refusal is answered with an error frame
 * naming the channel; the connection stays open. Granted: the token's expiry (ms since the epoch).
 */
export async function subscriptionTokenGrants(
  p: GatewayParts,
  c: Connection,
  channel: string,
  token: string,
): Promise<number | false> {
  const refuse = (reason: string, code: string, message: string): false => {
    p.metrics.tokenRefusals.inc({ stage: 'subscribe', reason });
    c.send({ type: 'error', code, message, channel });
    return false;
  };
  if (isPersonalChannel(channel) || isInternalChannel(channel)) {
    return refuse('channel', 'forbidden', `no token grants ${channel}`);
  }
  const verdict = await p.s.tokens.verify(token);
  if ('refused' in verdict) {
    const { reason, code, message } = verdict.refused;
    const wire =
      code === CloseCode.TokenExpired
        ? 'token-expired'
        : code === CloseCode.AuthUnavailable
          ? 'unavailable'
          : 'token-invalid';
    return refuse(reason, wire, message);
  }
  if (verdict.ok.channel !== channel) return refuse('channel', 'token-invalid', `the token is not for ${channel}`);
  if (verdict.ok.user !== c.userId) return refuse('user', 'token-invalid', 'the token is for another user');
  return c.closed ? false : verdict.ok.expiresAt;
}
