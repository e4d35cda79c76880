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
  subscribe<F extends EventMap = E>(channel: string, handler: MessageHandler<F>): () => void;
  /** Stops one handler, or every handler of the channel when none is given. */
  unsubscribe(channel: string, handler?: MessageHandler<never>): void;
  /**
   * Who is in the channel (user ids, de-duplicated across tabs and gateways); joins it if needed.
   * `change` says who joined and who left since the previous call (on the first, everyone joined).
   */
  presence(channel: string, onChange: (users: string[], change: PresenceChange) => void): () => void;
  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void;
  /** The last position delivered on a channel (for the app's own bookkeeping). */
  cursor(channel: string): { epoch: string; offset: number } | undefined;
  close(): void;
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
