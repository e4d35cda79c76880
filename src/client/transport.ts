import type { ClientMessage, ServerMessage } from '../protocol/index.js';

/** What a transport reports to the client core. */
export interface TransportEvents {
  /** Connected (WebSocket open / SSE stream started, including the browser's own SSE reconnects). */
  open(): void;
  frame(message: ServerMessage): void;
  /** The browser is retrying the SSE stream by itself (with Last-Event-ID). */
  interrupted(): void;
  /** Gone for good; `opened` says whether it ever connected (how blocked WebSockets are detected). */
  closed(code: number, reason: string, opened: boolean): void;
}

export interface Transport {
  readonly kind: 'websocket' | 'sse';
  /** Sends a frame when the transport can (an open WebSocket); false otherwise. */
  send(message: ClientMessage): boolean;
  /** Closes without reporting `closed` (the client asked for it). */
  close(): void;
}

/** Code reported when the connection dropped without a close frame (RFC 6455 "abnormal closure"). */
export const ABNORMAL = 1006;

export function parseFrame(text: unknown): ServerMessage | null {
  if (typeof text !== 'string') return null;
  try {
    const m = JSON.parse(text) as ServerMessage | null;
    return m !== null && typeof m === 'object' && typeof m.type === 'string' ? m : null;
  } catch {
    return null;
  }
}
