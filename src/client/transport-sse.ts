import { ABNORMAL, parseFrame, type Transport, type TransportEvents } from './transport.js';
import type { EventSourceConstructor, EventSourceLike } from './types.js';

interface Slots {
  onopen: (() => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: (() => void) | null;
}

const CONNECTING = 0;

/**
 * Server-Sent Events, for networks that block WebSocket. One-way: joining or
 * leaving a channel means reopening the stream with a new URL (the client
 * core does that). A dropped stream is first retried by the browser itself,
 * which sends Last-Event-ID (every channel's cursor); if that retry fails too,
 * this reports `closed` so the client reconnects with backoff instead of the
 * browser's fixed retry interval.
 */
export function openEventSource(Ctor: EventSourceConstructor, url: string, events: TransportEvents): Transport {
  const es = new Ctor(url, { withCredentials: true }) as EventSourceLike & Slots;
  let opened = false;
  let openSinceError = false;
  let done = false;

  const finish = (code: number, reason: string) => {
    if (done) return;
    done = true;
    es.onopen = es.onmessage = es.onerror = null;
    es.close();
    events.closed(code, reason, opened);
  };

  es.onopen = () => {
    if (done) return;
    opened = true;
    openSinceError = true;
    events.open();
  };
  es.onmessage = (event) => {
    if (done) return;
    const m = parseFrame(event.data);
    if (m) events.frame(m);
  };
  // The gateway's way of closing an SSE stream with a close code (4001 session ended, 1012 restart…).
  es.addEventListener('close', (event) => {
    let code = ABNORMAL;
    let reason = '';
    try {
      const body = JSON.parse(event.data) as { code?: unknown; reason?: unknown };
      if (typeof body.code === 'number') code = body.code;
      if (typeof body.reason === 'string') reason = body.reason;
    } catch {}
    finish(code, reason);
  });
  es.onerror = () => {
    if (done) return;
    if (es.readyState === CONNECTING && openSinceError) {
      openSinceError = false;
      events.interrupted();
      return;
    }
    finish(ABNORMAL, 'event stream failed');
  };

  return {
    kind: 'sse',
    send: () => false,
    close() {
      if (done) return;
      done = true;
      es.onopen = es.onmessage = es.onerror = null;
      es.close();
    },
  };
}
