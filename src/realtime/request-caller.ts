import { hashId } from '../core/ids.js';
import type { ReplyMessage } from '../protocol/requests.js';
import type { Identity } from './identity.js';
import type { GatewayParts } from './parts.js';
import { RateLimit } from './rate-limit.js';
import type { RequestContext } from './rpc-types.js';

/**
 * Who sends a request and where its reply goes: an open WebSocket connection, or one POST /rpc
 * (what an SSE client, which cannot send frames, uses). Each has its own bounds.
 */
export interface Caller {
  readonly id: string;
  readonly identity: Identity;
  /** The handshake's Cookie and allowlisted headers, for the RPC proxy. */
  readonly forwarded: Record<string, string>;
  /** Whether the caller already joined `channel` (a subscription token may have granted it). */
  joined(channel: string): boolean;
  reply(message: ReplyMessage): void;
  readonly bounds: RequestBounds;
}

/** One caller's rate (token bucket) and requests awaiting their reply. */
export class RequestBounds {
  readonly rate: RateLimit;
  inFlight = 0;
  constructor(perSecond: number) {
    this.rate = new RateLimit(perSecond);
  }
}

export type Answer = { result: unknown } | { error: { code: string; message: string } };

export const refusal = (code: string, message: string): Answer => ({ error: { code, message } });

export function contextOf(p: GatewayParts, caller: Caller): RequestContext {
  const { userId, sessionId } = caller.identity;
  return {
    user: userId,
    session: sessionId === null ? null : hashId(sessionId),
    connection: caller.id,
    gateway: p.s.id,
    realtime: p.s.requests.publisher,
  };
}
