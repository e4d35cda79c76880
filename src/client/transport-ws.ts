import { type ClientMessage, CloseCode } from '../protocol/index.js';
import { ABNORMAL, parseFrame, type Transport, type TransportEvents } from './transport.js';
import type { WebSocketConstructor, WebSocketLike } from './types.js';

interface Slots {
  onopen: (() => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code?: number; reason?: string }) => void) | null;
  onerror: (() => void) | null;
}

const OPEN = 1;
// Node's `ws` re-throws an 'error' nobody listens to, so a detached socket keeps a no-op listener.
const ignore = () => {};

/**
 * One WebSocket connection. Browsers hide protocol pings, so liveness is
 * checked with the protocol's own `ping`: after `pingMs` of silence a ping goes
 * out, and a socket silent for two periods is dropped (a blackholed network
 * never delivers a close frame).
 */
export function openWebSocket(
  Ctor: WebSocketConstructor,
  url: string,
  pingMs: number,
  events: TransportEvents,
): Transport {
  const ws = new Ctor(url) as WebSocketLike & Slots;
  let opened = false;
  let done = false;
  let heard = Date.now();
  let pings = 0;

  const detach = () => {
    done = true;
    clearInterval(timer);
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = ignore;
  };
  const finish = (code: number, reason: string) => {
    if (done) return;
    detach();
    events.closed(code, reason, opened);
  };

  ws.onopen = () => {
    opened = true;
    heard = Date.now();
    events.open();
  };
  ws.onmessage = (event) => {
    heard = Date.now();
    const m = parseFrame(event.data);
    if (m) events.frame(m);
  };
  // A failed handshake or a dropped network shows up as 1006 (browsers say nothing more).
  ws.onclose = (event) => finish(event.code || ABNORMAL, event.reason ?? '');
  ws.onerror = ignore;

  const timer = setInterval(() => {
    if (!opened || done) return;
    const silent = Date.now() - heard;
    if (silent >= 2 * pingMs) {
      safeClose(ws, CloseCode.Timeout);
      finish(CloseCode.Timeout, 'no answer from the gateway');
    } else if (silent >= pingMs) {
      send({ type: 'ping', id: ++pings });
    }
  }, pingMs);

  const send = (message: ClientMessage): boolean => {
    if (done || ws.readyState !== OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  };

  return {
    kind: 'websocket',
    send,
    close() {
      if (done) return;
      detach();
      safeClose(ws, 1000);
    },
  };
}

function safeClose(ws: WebSocketLike, code: number): void {
  try {
    ws.close(code);
  } catch {
    // Already closing, or a runtime that rejects closing a connecting socket: either way it is gone.
  }
}
