import { brand, isBranded } from '../core/errors.js';
import type { Publisher } from './publisher.js';

/** Who calls: what an RPC handler, `canPublish` and the RPC proxy are told. */
export interface RequestContext {
  /** The connection's user; null for an anonymous session. */
  user: string | null;
  /** A hash of the shoal session id (the `session` of `hello`); null for a token or proxy connection. */
  session: string | null;
  /** The connection's id on its gateway. */
  connection: string;
  gateway: string;
  /** Publishes to channels on every gateway, as a web node does. */
  realtime: Publisher;
}

/** An in-process method: its return value is the reply's `result`. Throw `RpcError` to answer an error. */
export type RpcHandler = (ctx: RequestContext, data: unknown) => unknown;

/** A refusal an RPC handler answers with: its `code` and `message` reach the client as they are. */
export class RpcError extends Error {
  override name = 'RpcError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    brand(this, new.target); // recognized by every copy of shoal (see core/errors.ts)
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class instanceof asks about, a subclass too
    return isBranded(value, this);
  }
}

/** Methods the app answers over HTTP (any backend): see rpc-proxy.ts. */
export interface RpcProxyOptions {
  url: string;
  /** How long the app may take; then the reply is `unavailable` (default 3000 ms). No retries. */
  timeoutMs?: number;
  /** Handshake headers forwarded besides Cookie (lower-case names); default the connect proxy's list. */
  headers?: string[];
}

/** Per-connection bounds on `rpc`, `pub` and `history` frames. Over them the reply is an error; the connection stays open. */
export interface RequestLimits {
  /** Largest request frame in bytes (default 16 KiB): over it, `too_big`. */
  maxBytes?: number;
  /** Requests per second per connection, bursts twice that (default 10): over it, `rate_limited`. */
  perSecond?: number;
  /** Requests awaiting their reply per connection (default 16): over it, `rate_limited`. */
  maxInFlight?: number;
  /** Most messages one `history` request returns (default 100). */
  maxHistory?: number;
  /** How long an in-process handler may take before the reply is `unavailable` (default 10 000 ms). */
  handlerTimeoutMs?: number;
}

export interface ResolvedRequestLimits {
  maxBytes: number;
  perSecond: number;
  maxInFlight: number;
  maxHistory: number;
  handlerTimeoutMs: number;
}

export function resolveRequestLimits(o: RequestLimits | undefined): ResolvedRequestLimits {
  return {
    maxBytes: o?.maxBytes ?? 16 * 1024,
    perSecond: o?.perSecond ?? 10,
    maxInFlight: o?.maxInFlight ?? 16,
    maxHistory: o?.maxHistory ?? 100,
    handlerTimeoutMs: o?.handlerTimeoutMs ?? 10_000,
  };
}
