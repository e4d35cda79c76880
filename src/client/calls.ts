import type { ReplyMessage, RequestMessage } from '../protocol/index.js';
import type { Transport } from './transport.js';
import { type FetchLike, type HistoryOptions, RealtimeError, type RequestOptions } from './types.js';

interface Pending {
  frame: RequestMessage;
  resolve(result: unknown): void;
  reject(err: RealtimeError): void;
  timer: ReturnType<typeof setTimeout>;
  /** Sent on the current WebSocket: lost with it. */
  sent: boolean;
}

/** Default time to wait for a reply, the SDK's own bound (the gateway bounds its side). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Requests awaiting their reply: `rpc`, `pub`, `history`. Over WebSocket a frame on the socket,
 * answered by a `reply` frame; over SSE, which cannot send, a POST of the same frame to the
 * gateway's /request, answered in the response. Each settles once: its reply, its timeout
 * (code "timeout"), or the loss of the socket it was sent on (code "disconnected").
 */
export class Calls {
  #next = 1;
  readonly #pending = new Map<number, Pending>();

  constructor(
    /** The POST /request URL (beside /sse) and the token to put on it, if the connection has one. */
    readonly requestUrl: () => string,
    readonly fetch: () => FetchLike | undefined,
  ) {}

  rpc(t: Transport | null, method: string, data: unknown, o?: RequestOptions): Promise<unknown> {
    return this.start(t, (id) => ({ type: 'rpc', id, method, data: data ?? null }), o?.timeoutMs);
  }

  publish(t: Transport | null, channel: string, event: string, data: unknown, o?: RequestOptions): Promise<unknown> {
    return this.start(t, (id) => ({ type: 'pub', id, channel, event, data: data ?? null }), o?.timeoutMs);
  }

  history(t: Transport | null, channel: string, o: HistoryOptions = {}): Promise<unknown> {
    const { limit, since } = o;
    const frame = (id: number) => ({
      type: 'history' as const,
      id,
      channel,
      ...(limit ? { limit } : {}),
      ...(since ? { since } : {}),
    });
    return this.start(t, frame, o.timeoutMs);
  }

  start(
    t: Transport | null,
    make: (id: number) => RequestMessage,
    timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
  ): Promise<unknown> {
    const id = this.#next++;
    const frame = make(id);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new RealtimeError('timeout', `no reply to ${frame.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      const p: Pending = { frame, resolve, reject, timer, sent: false };
      this.#pending.set(id, p);
      this.#send(t, p);
    });
  }

  /** A transport opened: send what waited for it. */
  flush(t: Transport | null): void {
    for (const p of this.#pending.values()) if (!p.sent) this.#send(t, p);
  }

  /** The socket closed: what was sent on it will never be answered. */
  lost(reason: string): void {
    for (const [id, p] of this.#pending) {
      if (!p.sent) continue;
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new RealtimeError('disconnected', `the connection closed before the reply (${reason})`));
    }
  }

  settle(m: ReplyMessage): void {
    const p = this.#pending.get(m.id);
    if (!p) return;
    this.#pending.delete(m.id);
    clearTimeout(p.timer);
    if ('error' in m) p.reject(new RealtimeError(m.error.code, m.error.message));
    else p.resolve(m.result);
  }

  #send(t: Transport | null, p: Pending): void {
    if (t?.kind === 'websocket') {
      p.sent = t.send(p.frame);
      return;
    }
    if (t?.kind !== 'sse') return; // sent when a transport opens
    p.sent = true;
    void this.#post(p.frame);
  }

  async #post(frame: RequestMessage): Promise<void> {
    const f = this.fetch() ?? (globalThis.fetch as unknown as FetchLike | undefined);
    const fail = (message: string) =>
      this.settle({ type: 'reply', id: frame.id, error: { code: 'unavailable', message } });
    if (!f) return fail('no fetch in this runtime: pass options.fetch');
    const url = this.requestUrl();
    const where = `POST ${url.split('?')[0]}`; // the token stays out of messages
    let res: Awaited<ReturnType<FetchLike>>;
    try {
      res = await f(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(frame),
        credentials: 'include',
      });
    } catch (err) {
      return fail(`${where} failed: ${String(err)}`);
    }
    const body = (await res.json().catch(() => undefined)) as ReplyMessage | undefined;
    if (res.ok && body?.type === 'reply') return this.settle(body);
    // Something other than a gateway answered (an app page, a proxy's error): say where it went.
    // An app page (200) or an app's 404/405 means the path reached a web node; anything else is an outage.
    const misrouted = body === undefined && (res.ok || res.status === 404 || res.status === 405);
    fail(
      misrouted
        ? `${where} answered ${res.status} without a JSON reply: is this path routed to the gateways?`
        : `${where} answered ${res.status}`,
    );
  }
}

/**
 * Where requests go over SSE: the stream's own URL, POSTed, without its query. Whatever routes the
 * stream to a gateway (nginx, an ingress, a dev balancer) then routes the requests too.
 */
export function requestUrlOf(sse: string, token: string | undefined): string {
  const u = new URL(sse);
  u.search = '';
  if (token !== undefined) u.searchParams.set('token', token);
  return u.href;
}
