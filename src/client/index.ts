/**
 * shoal/client — the browser SDK for shoal realtime gateways.
 *
 *   const rt = connect<{ 'order.shipped': { id: string } }>('wss://rt.example.com/');
 *   rt.subscribe('orders', (m) => { if (m.event === 'order.shipped') show(m.data.id); });
 *   rt.on('reset', (channel) => reloadState(channel));
 *
 * No Node imports: it bundles for browsers as is.
 */
import { Client } from './client.js';
import { endpoints } from './endpoints.js';
import { checkOptions } from './options.js';
import type { ClientOptions, EventMap, ShoalClient } from './types.js';

export { CloseCode } from '../protocol/index.js';
export { type BackoffOptions, fullJitter } from './backoff.js';
export type {
  ChannelMessage,
  ClientEvents,
  ClientOptions,
  ClientState,
  Cursor,
  EventMap,
  EventSourceConstructor,
  EventSourceLike,
  FetchLike,
  Hello,
  History,
  HistoryOptions,
  MessageHandler,
  PresenceChange,
  PresenceInfo,
  RequestOptions,
  ShoalClient,
  SubscribeOptions,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';
export { RealtimeError } from './types.js';

/**
 * Connects to a gateway (WebSocket, or SSE where WebSocket is blocked) and keeps
 * the connection up: reconnects with full-jitter backoff and resumes every
 * subscribed channel from its last offset, on whichever gateway answers.
 */
export function connect<E extends EventMap = EventMap>(url: string, options: ClientOptions = {}): ShoalClient<E> {
  checkOptions(options);
  return new Client<E>(endpoints(url, options.sseUrl), options);
}
