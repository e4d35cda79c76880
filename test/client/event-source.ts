import type { EventSourceConstructor } from '../../src/client/index.js';

type Listener = (event: { type: string; data: string; lastEventId: string }) => void;

/**
 * An EventSource for Node (Node 20 has none without a flag), written to the
 * WHATWG algorithm the SDK relies on: `open` on a 200 text/event-stream,
 * `message` and named events, `id` kept as Last-Event-ID and sent on the
 * automatic reconnect, `retry`, CONNECTING + `error` then a reconnect after a
 * dropped stream, CLOSED + `error` on a non-200 answer. Extra request headers
 * stand in for the cookie a browser would attach (withCredentials).
 */
export function eventSourceWith(
  headers: Record<string, string>,
  opened?: (url: string, lastEventId: string) => void,
): EventSourceConstructor {
  return class NodeEventSource {
    static readonly CONNECTING = 0;
    static readonly OPEN = 1;
    static readonly CLOSED = 2;
    readyState = 0;
    onopen: (() => void) | null = null;
    onmessage: Listener | null = null;
    onerror: (() => void) | null = null;
    readonly #listeners = new Map<string, Set<Listener>>();
    #lastEventId = '';
    #retryMs = 1000;
    #abort: AbortController | null = null;
    #timer: NodeJS.Timeout | undefined;

    constructor(readonly url: string) {
      this.#timer = setTimeout(() => void this.#connect(), 0);
    }

    addEventListener(type: string, listener: Listener): void {
      const set = this.#listeners.get(type) ?? new Set();
      set.add(listener);
      this.#listeners.set(type, set);
    }

    close(): void {
      this.readyState = 2;
      clearTimeout(this.#timer);
      this.#abort?.abort();
    }

    async #connect(): Promise<void> {
      if (this.readyState === 2) return;
      opened?.(this.url, this.#lastEventId);
      const abort = new AbortController();
      this.#abort = abort;
      try {
        const res = await fetch(this.url, {
          headers: {
            ...headers,
            accept: 'text/event-stream',
            ...(this.#lastEventId ? { 'last-event-id': this.#lastEventId } : {}),
          },
          signal: abort.signal,
        });
        if (this.readyState === 2) return void res.body?.cancel().catch(() => {});
        if (res.status !== 200 || !res.headers.get('content-type')?.startsWith('text/event-stream')) {
          await res.body?.cancel().catch(() => {});
          this.readyState = 2;
          this.onerror?.();
          return;
        }
        this.readyState = 1;
        this.onopen?.();
        await this.#read(res.body as ReadableStream<Uint8Array>);
      } catch {
        // A network error: fall through to the reconnect, as the spec says.
      }
      if (this.readyState === 2) return;
      this.readyState = 0;
      this.onerror?.();
      if (this.readyState === 0) this.#timer = setTimeout(() => void this.#connect(), this.#retryMs);
    }

    async #read(body: ReadableStream<Uint8Array>): Promise<void> {
      const decoder = new TextDecoder();
      let buffer = '';
      let data: string[] = [];
      let type = '';
      const reader = body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        for (let nl = buffer.search(/\r\n|\r|\n/); nl >= 0; nl = buffer.search(/\r\n|\r|\n/)) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
          if (line === '') {
            if (data.length > 0) this.#dispatch(type || 'message', data.join('\n'));
            data = [];
            type = '';
            continue;
          }
          if (line.startsWith(':')) continue;
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'data') data.push(value);
          else if (field === 'event') type = value;
          else if (field === 'id' && !value.includes('\0')) this.#lastEventId = value;
          else if (field === 'retry' && /^\d+$/.test(value)) this.#retryMs = Number(value);
        }
        if (this.readyState === 2) return void reader.cancel().catch(() => {});
      }
    }

    #dispatch(type: string, data: string): void {
      if (this.readyState === 2) return;
      const event = { type, data, lastEventId: this.#lastEventId };
      if (type === 'message') this.onmessage?.(event);
      for (const l of this.#listeners.get(type) ?? []) l(event);
    }
  };
}
