import { type Endpoints, withParams } from './endpoints.js';
import type { Transport, TransportEvents } from './transport.js';
import { openEventSource } from './transport-sse.js';
import { openWebSocket } from './transport-ws.js';
import type { ClientOptions, EventSourceConstructor, WebSocketConstructor } from './types.js';
import { RealtimeError } from './types.js';

export type Kind = 'websocket' | 'sse';

/**
 * Which transport the next connection uses, and opening it. With `transport: 'auto'`: WebSocket,
 * switching to SSE after `sseAfterFailures` attempts in a row that never opened (a proxy that
 * blocks upgrades), and back to WebSocket when SSE fails to open as well.
 */
export class TransportChoice {
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #EventSource: EventSourceConstructor | undefined;
  readonly #auto: boolean;
  readonly #sseAfter: number;
  readonly #pingMs: number;
  readonly #sseTimeoutMs: number | undefined;
  #mode: Kind;
  #wsFailures = 0;

  constructor(
    readonly endpoints: Endpoints,
    options: ClientOptions,
  ) {
    const g = globalThis as { WebSocket?: WebSocketConstructor; EventSource?: EventSourceConstructor };
    this.#WebSocket = options.WebSocket ?? g.WebSocket;
    this.#EventSource = options.EventSource ?? g.EventSource;
    this.#sseAfter = Math.max(1, options.sseAfterFailures ?? 3);
    this.#pingMs = Math.max(1000, options.pingMs ?? 25_000);
    this.#sseTimeoutMs = options.sseTimeoutMs === undefined ? undefined : Math.max(1000, options.sseTimeoutMs);
    const want = options.transport ?? 'auto';
    this.#auto = want === 'auto';
    this.#mode = want === 'sse' || (want === 'auto' && !this.#WebSocket) ? 'sse' : 'websocket';
    if (want === 'auto' && !this.#WebSocket && !this.#EventSource) throw missing('WebSocket');
    if (this.#mode === 'websocket' && !this.#WebSocket) throw missing('WebSocket');
    if (this.#mode === 'sse' && !this.#EventSource) throw missing('EventSource');
  }

  get mode(): Kind {
    return this.#mode;
  }

  open(params: URLSearchParams, events: TransportEvents): Transport {
    return this.#mode === 'websocket'
      ? openWebSocket(
          this.#WebSocket as WebSocketConstructor,
          withParams(this.endpoints.ws, params),
          this.#pingMs,
          events,
        )
      : openEventSource(
          this.#EventSource as EventSourceConstructor,
          withParams(this.endpoints.sse, params),
          this.#sseTimeoutMs,
          events,
        );
  }

  opened(): void {
    if (this.#mode === 'websocket') this.#wsFailures = 0;
  }

  /** A connection attempt that never opened. */
  failedToOpen(): void {
    if (!this.#auto) return;
    if (this.#mode === 'websocket' && ++this.#wsFailures >= this.#sseAfter && this.#EventSource) {
      this.#mode = 'sse';
    } else if (this.#mode === 'sse' && this.#WebSocket) {
      // SSE failed too: the gateway is more likely down than WebSocket blocked, so try WebSocket again.
      this.#mode = 'websocket';
      this.#wsFailures = 0;
    }
  }
}

function missing(what: string): RealtimeError {
  return new RealtimeError(
    'ERR_SHOAL_NO_TRANSPORT',
    `this runtime has no ${what}: pass options.${what}${what === 'WebSocket' ? ' (in Node: the WebSocket class of the "ws" package)' : ''}`,
  );
}
