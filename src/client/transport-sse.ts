import { CloseCode } from '../protocol/index.js';
import { ABNORMAL, parseFrame, type Transport, type TransportEvents } from './transport.js';
import type { EventSourceConstructor, EventSourceLike } from './types.js';

interface Slots {
  onopen: (() => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: (() => void) | null;
}

const CONNECTING = 0;
/** The gateway's default ping period, assumed until its first `ping` event says otherwise. */
const GATEWAY_PING_MS = 20_000;
/** Silence longer than this many ping periods means the stream is dead. */
const SSE_SILENT_PERIODS = 2.5;

/**
 * Server-Sent Events, for networks that block WebSocket. One-way: joining or
 * leaving a channel means reopening the stream with a new URL (the client
 * core does that). A dropped stream is first retried by the browser itself,
 * which sends Last-Event-ID (every channel's cursor); if that retry fails too,
 * this reports `closed` so the client reconnects with backoff instead of the
 * browser's fixed retry interval.
 *
 * A stream can also die silently (a proxy or NAT that forgets it, a gateway
 * behind a balancer that never passes the close on): the gateway sends a
 * `ping` event every period, so nothing heard for `silentMs` (default 2.5 ping
 * periods) closes the stream with 4000 and the client reconnects from its cursors.
 */
export function openEventSource(
  Ctor: EventSourceConstructor,
  url: string,
  silentMs: number | undefined,
  events: TransportEvents,
): Transport {
  const es = new Ctor(url, { withCredentials: true }) as EventSourceLike & Slots;
  let opened = false;
  let openSinceError = false;
  let done = false;
  let heard = Date.now();
  let bound = silentMs ?? SSE_SILENT_PERIODS * GATEWAY_PING_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;

  // One timer, re-armed for the time left: a message only stamps `heard`.
  const watch = () => {
    clearTimeout(timer);
    timer = setTimeout(
      () => {
        if (done) return;
        if (Date.now() - heard < bound) return watch();
        finish(CloseCode.Timeout, `no event from the gateway for ${bound} ms`);
      },
      Math.max(0, bound - (Date.now() - heard)),
    );
  };

  const detach = () => {
    done = true;
    clearTimeout(timer);
    es.onopen = es.onmessage = es.onerror = null;
    es.close();
  };
  const finish = (code: number, reason: string) => {
    if (done) return;
    detach();
    events.closed(code, reason, opened);
  };

  es.onopen = () => {
    if (done) return;
    heard = Date.now();
    opened = true;
    openSinceError = true;
    events.open();
  };
  es.onmessage = (event) => {
    if (done) return;
    heard = Date.now();
    const m = parseFrame(event.data);
    if (m) events.frame(m);
  };
  es.addEventListener('ping', (event) => {
    if (done) return;
    heard = Date.now();
    if (silentMs !== undefined) return;
    try {
      const every = (JSON.parse(event.data) as { every?: unknown }).every;
      if (typeof every === 'number' && every > 0 && SSE_SILENT_PERIODS * every !== bound) {
        bound = SSE_SILENT_PERIODS * every;
        watch();
      }
    } catch {}
  });
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
  watch();

  return {
    kind: 'sse',
    send: () => false,
    close() {
      if (!done) detach();
    },
  };
}
