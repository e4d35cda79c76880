import { ShoalError } from '../core/errors.js';
import type { BackoffOptions } from './backoff.js';

/** Maps event names to payload types: `connect<{ 'order.shipped': { id: string } }>(url)`. */
export type EventMap = Record<string, unknown>;

/** One delivered message; `switch (m.event)` narrows `m.data`. */
export type ChannelMessage<E extends EventMap = EventMap> = {
  [K in keyof E & string]: { channel: string; event: K; data: E[K]; epoch: string; offset: number };
}[keyof E & string];

export type MessageHandler<E extends EventMap = EventMap> = (message: ChannelMessage<E>) => void;

/**
 * connecting → open → (reconnecting → open)* → closed | ended.
 * `ended`: the session ended (4001: logout, expiry, rotation), there was none on the handshake
 * (4401: sign in, then connect again), the app disconnected it (4403, 4500–4999), or its token
 * was refused (4410) or expired with no `getToken` to renew it (4411); the client will not reconnect.
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed' | 'ended';

export interface Hello {
  gateway: string;
  user: string | null;
  /** A hash of the session id (never the id itself); null on a connection opened with a token. */
  session: string | null;
  /** Channels the gateway joined on its own: `session:…` and, when signed in, `user:…`. */
  channels: string[];
  /** When the connection token expires (seconds since the epoch); absent without a token. */
  expires?: number;
}

export interface ClientEvents {
  state: (state: ClientState, detail: { transport: 'websocket' | 'sse'; code?: number; reason?: string }) => void;
  /** The channel's history could not be replayed: reload its state from the app's API. */
  reset: (channel: string) => void;
  error: (error: RealtimeError) => void;
  hello: (hello: Hello) => void;
  /**
   * The server removed this client from a channel (`publisher.unsubscribe`, or `reauthorize` found
   * access gone: reason "forbidden"). Its handlers are dropped; subscribe again to ask anew.
   */
  unsubscribed: (channel: string, reason: string) => void;
  /**
   * The app closed this connection from the server side (`publisher.disconnect`) with 4403 or its
   * own code in 4500–4999; the client does not reconnect (state `ended`). 1012 reconnects instead.
   */
  disconnected: (code: number, reason: string) => void;
}

/**
 * Minimal shapes of the browser's WebSocket / EventSource, so a Node WebSocket
 * (the `ws` package) or an EventSource implementation can be injected. Handler
 * slots are `unknown` here because implementations type their event objects
 * differently; the SDK only reads `data`, `code` and `reason`.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: unknown;
  onmessage: unknown;
  onclose: unknown;
  onerror: unknown;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface EventSourceLike {
  readonly readyState: number;
  close(): void;
  onopen: unknown;
  onmessage: unknown;
  onerror: unknown;
  /** `close` (the gateway's close code) and `ping` (its keepalive) events. */
  addEventListener(type: 'close' | 'ping', listener: (event: { data: string }) => void): void;
}
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

export interface ClientOptions {
  /**
   * A signed connection token (JWT) for a client without the session cookie: another site, a native
   * or server client. Sent as `?token=` on the WebSocket and SSE URLs.
   */
  token?: string;
  /**
   * Returns a new connection token. Called before connecting when the held one is missing or
   * about to expire, ahead of its expiry on an open connection (the new token is sent on the
   * socket, or an SSE stream is reopened with it), and after a close with 4411. Without it, an
   * expired token ends the client (state `ended`, code 4411).
   */
  getToken?: () => Promise<string>;
  /** 'auto' (default): WebSocket, falling back to SSE when WebSocket never opens. */
  transport?: 'auto' | 'websocket' | 'sse';
  /** WebSocket attempts that fail without ever opening before 'auto' switches to SSE (default 3). */
  sseAfterFailures?: number;
  /** SSE endpoint; default over http(s): "/sse" beside a final "/ws" of the connect URL's path, else the path + "/sse". */
  sseUrl?: string;
  backoff?: BackoffOptions;
  /** WebSocket keepalive: ping after this much silence (ms, default 25 000); two silent periods close it. */
  pingMs?: number;
  /**
   * SSE liveness: a stream that delivered nothing (no message, no `ping` event) for this long is closed
   * and reopened from the cursors (ms, min 1000). Default: 2.5 × the ping period the gateway announces
   * (50 000 with the gateway's default 20 s heartbeat).
   */
  sseTimeoutMs?: number;
  /** Injectable for tests and non-browser runtimes; default globalThis.WebSocket / globalThis.EventSource. */
  WebSocket?: WebSocketConstructor;
  EventSource?: EventSourceConstructor;
  /** Injectable randomness for the jitter (tests). */
  random?: () => number;
  /** How requests (rpc, publish, history) are POSTed over SSE; default globalThis.fetch. */
  fetch?: FetchLike;
}

/** A `fetch` as the SDK uses it (POST /request over SSE); injectable for tests and other runtimes. */
export type FetchLike = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string; credentials: 'include' },
) => Promise<{ ok: boolean; status: number; json(): Promise<unknown> }>;

/** A position in a channel: its epoch and the offset of a message. */
export interface Cursor {
  epoch: string;
  offset: number;
}

/**
 * A subscription token for a channel the app grants by token (a JWT with claim `channel`): given
 * as is, or fetched by `getToken` (again when the gateway ends the subscription with "token
 * expired"). Joined over WebSocket only: the SSE connect URL carries no per-channel token.
 */
export interface SubscribeOptions {
  token?: string;
  getToken?: () => Promise<string>;
}

export interface RequestOptions {
  /** How long to wait for the reply before rejecting with code "timeout" (default 10 000 ms). */
  timeoutMs?: number;
}

export interface HistoryOptions extends RequestOptions {
  /** How many of the newest messages (the gateway caps it, default 100). */
  limit?: number;
  /** Only the messages after this position (e.g. a cursor kept from an earlier visit). */
  since?: Cursor;
}

/** A channel's recent messages, oldest first, and where the channel is now. */
export interface History {
  messages: { epoch: string; offset: number; event: string; data: unknown }[];
  epoch: string;
  offset: number;
  /** False when some of the messages asked for are no longer in history (its window was passed, or the epoch changed). */
  complete: boolean;
}

/** Who joined and who left a channel since the previous presence list. */
export interface PresenceChange {
  joined: string[];
  left: string[];
}

export interface ShoalClient<E extends EventMap = EventMap> {
  readonly state: ClientState;
  readonly transport: 'websocket' | 'sse';
  /** The gateway's greeting on the current connection, once received. */
  readonly hello: Hello | null;
  /** Follows a channel; returns the function that stops this handler. `F` overrides the event map per channel. */
  subscribe<F extends EventMap = E>(
    channel: string,
    handler: MessageHandler<F>,
    options?: SubscribeOptions,
  ): () => void;
  /** Stops one handler, or every handler of the channel when none is given. */
  unsubscribe(channel: string, handler?: MessageHandler<never>): void;
  /**
   * Who is in the channel (user ids, de-duplicated across tabs and gateways); joins it if needed.
   * `change` says who joined and who left since the previous call (on the first, everyone joined).
   */
  presence(channel: string, onChange: (users: string[], change: PresenceChange) => void): () => void;
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void;
  /**
   * Calls a method of the app (an in-process handler on the gateway, or the app over the RPC
   * proxy). Rejects with a RealtimeError whose `code` is the app's error code, "timeout",
   * "disconnected", "rate_limited", "too_big", "not_found", "unavailable" or "internal".
   */
  rpc<R = unknown>(method: string, data?: unknown, options?: RequestOptions): Promise<R>;
  /** Publishes on a channel when the app's `canPublish` allows it (else rejects with "forbidden"). */
  publish(channel: string, event: string, data?: unknown, options?: RequestOptions): Promise<Cursor>;
  /** The newest messages of a channel this client may read (or those after `since`). */
  history(channel: string, options?: HistoryOptions): Promise<History>;
  /**
   * Who is in a channel this client may read, on every gateway: each connection with the info the
   * app lets it show (`connectionInfo`, a token's `info` claim, the connect proxy's `info`).
   */
  presenceInfo(channel: string, options?: RequestOptions): Promise<PresenceInfo>;
  /** The last position delivered on a channel (for the app's own bookkeeping). */
  cursor(channel: string): { epoch: string; offset: number } | undefined;
  close(): void;
}

/** The answer to `presenceInfo`. */
export interface PresenceInfo {
  /** Sorted by user; a user with two tabs is listed twice (two connections). At most 1,000 per gateway. */
  clients: Array<{ user: string; connection: string; info: unknown }>;
  /** False when a gateway did not answer in time: the list may miss its connections. */
  complete: boolean;
}

/** An error the gateway reported (`forbidden`, `protocol`, …) or a transport failure. */
export class RealtimeError extends ShoalError {
  override name = 'RealtimeError';
  constructor(
    code: string,
    message: string,
    readonly channel?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}
