import {
  CHANNEL_RULE,
  CloseCode,
  encodeCursors,
  isFinalCloseCode,
  isValidChannel,
  type ServerMessage,
} from '../protocol/index.js';
import { Backoff } from './backoff.js';
import { ChannelCursors } from './channel-state.js';
import { Listeners, safeCall } from './emitter.js';
import { type Endpoints, withParams } from './endpoints.js';
import type { Transport, TransportEvents } from './transport.js';
import { openEventSource } from './transport-sse.js';
import { openWebSocket } from './transport-ws.js';
import type {
  ChannelMessage,
  ClientEvents,
  ClientOptions,
  ClientState,
  EventMap,
  EventSourceConstructor,
  Hello,
  MessageHandler,
  PresenceChange,
  ShoalClient,
  WebSocketConstructor,
} from './types.js';
import { RealtimeError } from './types.js';

type Kind = 'websocket' | 'sse';

/** Diffs two lists, so listeners get join/leave events also across reconnects and over SSE. */
function presenceChange(before: readonly string[], after: readonly string[]): PresenceChange {
  const was = new Set(before);
  const now = new Set(after);
  return { joined: after.filter((u) => !was.has(u)), left: before.filter((u) => !now.has(u)) };
}
type AnyHandler = (message: ChannelMessage) => void;
type PresenceHandler = (users: string[], change: PresenceChange) => void;

/**
 * The client core: what the app follows (handlers, presence listeners), where
 * it is in each channel (cursors), and one transport at a time. Every
 * (re)connect asks for all followed channels at once, from their cursors, in
 * the URL, so whichever gateway the balancer picks resumes them in one round trip.
 */
export class Client<E extends EventMap = EventMap> implements ShoalClient<E> {
  #state: ClientState = 'connecting';
  #hello: Hello | null = null;
  readonly #handlers = new Map<string, Set<AnyHandler>>();
  readonly #presence = new Map<string, Set<PresenceHandler>>();
  readonly #lastPresence = new Map<string, string[]>();
  readonly #events = new Listeners<ClientEvents>();
  readonly #cursors = new ChannelCursors();
  readonly #backoff: Backoff;
  readonly #sseAfter: number;
  readonly #pingMs: number;
  readonly #sseTimeoutMs: number | undefined;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #EventSource: EventSourceConstructor | undefined;
  #mode: Kind;
  #transport: Transport | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wsFailures = 0;
  #openedAt = 0;
  #reopenQueued = false;
  /** Per connection: channels asked for (URL or `sub`), answered with `subscribed`, presence requested. */
  #requested = new Set<string>();
  #joined = new Set<string>();
  #presenceAsked = new Set<string>();
  #own = new Set<string>();

  constructor(
    readonly endpoints: Endpoints,
    readonly options: ClientOptions,
  ) {
    const g = globalThis as { WebSocket?: WebSocketConstructor; EventSource?: EventSourceConstructor };
    this.#WebSocket = options.WebSocket ?? g.WebSocket;
    this.#EventSource = options.EventSource ?? g.EventSource;
    this.#backoff = new Backoff(options.backoff, options.random);
    this.#sseAfter = Math.max(1, options.sseAfterFailures ?? 3);
    this.#pingMs = Math.max(1000, options.pingMs ?? 25_000);
    this.#sseTimeoutMs = options.sseTimeoutMs === undefined ? undefined : Math.max(1000, options.sseTimeoutMs);
    const want = options.transport ?? 'auto';
    this.#mode = want === 'sse' || (want === 'auto' && !this.#WebSocket) ? 'sse' : 'websocket';
    if (want === 'auto' && !this.#WebSocket && !this.#EventSource) throw missing('WebSocket');
    if (this.#mode === 'websocket' && !this.#WebSocket) throw missing('WebSocket');
    if (this.#mode === 'sse' && !this.#EventSource) throw missing('EventSource');
    // Deferred, so subscriptions made right after connect() ride along in the first URL.
    queueMicrotask(() => this.#connect());
  }

  get state(): ClientState {
    return this.#state;
  }

  get transport(): Kind {
    return this.#mode;
  }

  get hello(): Hello | null {
    return this.#hello;
  }

  cursor(channel: string): { epoch: string; offset: number } | undefined {
    const c = this.#cursors.get(channel);
    return c ? { ...c } : undefined;
  }

  subscribe<F extends EventMap = E>(channel: string, handler: MessageHandler<F>): () => void {
    return this.#follow(this.#handlers, channel, handler as AnyHandler);
  }

  unsubscribe(channel: string, handler?: MessageHandler<never>): void {
    const set = this.#handlers.get(channel);
    if (!set) return;
    if (handler) set.delete(handler as AnyHandler);
    if (!handler || set.size === 0) this.#handlers.delete(channel);
    if (!this.#wants(channel)) this.#leave(channel);
  }

  presence(channel: string, onChange: PresenceHandler): () => void {
    const known = this.#lastPresence.get(channel);
    if (known) queueMicrotask(() => safeCall(onChange, [...known], { joined: [...known], left: [] }));
    const hadPresence = this.#presence.has(channel);
    const stop = this.#follow(this.#presence, channel, onChange);
    if (!hadPresence) this.#askPresence(channel);
    return stop;
  }

  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void {
    return this.#events.add(event, listener);
  }

  close(): void {
    this.#stop('closed');
  }

  #follow<H>(map: Map<string, Set<H>>, channel: string, fn: H): () => void {
    if (!isValidChannel(channel)) {
      throw new TypeError(`"${channel}" is not a valid channel name: use ${CHANNEL_RULE}`);
    }
    const was = this.#wants(channel);
    let set = map.get(channel);
    if (!set) {
      set = new Set();
      map.set(channel, set);
    }
    set.add(fn);
    if (!was) this.#join(channel);
    return () => {
      const current = map.get(channel);
      if (!current?.delete(fn)) return;
      if (current.size === 0) map.delete(channel);
      if (!this.#wants(channel)) this.#leave(channel);
    };
  }

  #wants(channel: string): boolean {
    return this.#handlers.has(channel) || this.#presence.has(channel);
  }

  #wanted(): string[] {
    return [...new Set([...this.#handlers.keys(), ...this.#presence.keys()])];
  }

  #join(channel: string): void {
    const t = this.#transport;
    if (!t) return; // the next connect asks for it
    if (t.kind === 'sse') {
      this.#reopenSoon();
      return;
    }
    const from = this.#cursors.get(channel);
    if (t.send({ type: 'sub', channel, ...(from ? { from } : {}) })) this.#requested.add(channel);
  }

  #leave(channel: string): void {
    this.#cursors.delete(channel);
    this.#joined.delete(channel);
    this.#presenceAsked.delete(channel);
    this.#lastPresence.delete(channel);
    const t = this.#transport;
    if (!t) return;
    if (t.kind === 'sse') {
      this.#reopenSoon();
      return;
    }
    // The gateway closes ended sessions through their session channel: never leave it.
    if (!this.#requested.has(channel) || channel.startsWith('session:')) return;
    if (t.send({ type: 'unsub', channel })) this.#requested.delete(channel);
  }

  /** Over SSE presence rides in the URL (`presence=`), so a new presence channel reopens the stream. */
  #askPresence(channel: string): void {
    const t = this.#transport;
    if (t?.kind === 'sse') {
      this.#reopenSoon();
      return;
    }
    this.#askPresenceFrame(channel);
  }

  #askPresenceFrame(channel: string): void {
    const t = this.#transport;
    // The gateway answers `presence` only for a joined channel, so wait for `subscribed`.
    if (t?.kind !== 'websocket' || !this.#joined.has(channel) || this.#presenceAsked.has(channel)) return;
    if (t.send({ type: 'presence', channel })) this.#presenceAsked.add(channel);
  }

  #connect(): void {
    this.#timer = undefined;
    if (this.#state === 'closed' || this.#state === 'ended') return;
    const wanted = this.#wanted();
    const cursors = this.#cursors.snapshot(wanted);
    const params = new URLSearchParams();
    const fresh = wanted.filter((ch) => !cursors.has(ch));
    if (fresh.length > 0) params.set('channels', fresh.join(','));
    if (cursors.size > 0) params.set('resume', encodeCursors(cursors));
    const presence = [...this.#presence.keys()];
    if (presence.length > 0) params.set('presence', presence.join(','));
    this.#requested = new Set(wanted);
    this.#joined = new Set();
    // Over WebSocket presence is also asked with a frame once joined (an answer twice is harmless).
    this.#presenceAsked = new Set();
    const events: TransportEvents = {
      open: () => this.#opened(),
      frame: (m) => this.#frame(m),
      interrupted: () => this.#setState('reconnecting'),
      closed: (code, reason, opened) => this.#closed(code, reason, opened),
    };
    this.#transport =
      this.#mode === 'websocket'
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

  /** SSE cannot send `sub`/`unsub`: a change of channels reopens the stream (once per tick) from the cursors. */
  #reopenSoon(): void {
    if (this.#reopenQueued) return;
    this.#reopenQueued = true;
    setTimeout(() => {
      this.#reopenQueued = false;
      if (this.#transport?.kind !== 'sse') return;
      this.#transport.close();
      this.#transport = null;
      this.#connect();
    }, 0);
  }

  #opened(): void {
    this.#openedAt = Date.now();
    if (this.#mode === 'websocket') {
      this.#wsFailures = 0;
      // Reconcile what changed while the socket was connecting.
      const wanted = this.#wanted();
      for (const ch of wanted) if (!this.#requested.has(ch)) this.#join(ch);
      for (const ch of [...this.#requested]) if (!this.#wants(ch)) this.#leave(ch);
    }
  }

  #frame(m: ServerMessage): void {
    switch (m.type) {
      case 'hello':
        this.#hello = { gateway: m.gateway, user: m.user, session: m.session, channels: [...m.channels] };
        this.#own = new Set(m.channels);
        // Open once the gateway admitted the session: a socket it accepts only to close (4401, 4429) never is.
        this.#setState('open');
        this.#events.emit('hello', this.#hello);
        return;
      case 'subscribed':
        if (!this.#wants(m.channel)) {
          // Left while the join was in flight (the gateway's own channels are simply ignored).
          if (!this.#own.has(m.channel)) this.#transport?.send({ type: 'unsub', channel: m.channel });
          return;
        }
        this.#joined.add(m.channel);
        if (this.#cursors.subscribed(m)) this.#events.emit('reset', m.channel);
        if (this.#presence.has(m.channel)) this.#askPresenceFrame(m.channel);
        return;
      case 'msg':
        this.#message(m);
        return;
      case 'presence': {
        if (!this.#wants(m.channel)) return;
        // Kept even with no listener left, so a later presence() starts from the current list.
        const change = presenceChange(this.#lastPresence.get(m.channel) ?? [], m.users);
        this.#lastPresence.set(m.channel, [...m.users]);
        for (const l of [...(this.#presence.get(m.channel) ?? [])]) safeCall(l, [...m.users], change);
        return;
      }
      case 'error':
        this.#events.emit('error', new RealtimeError(m.code, m.message, m.channel));
        return;
      case 'unsubscribed':
        // With a reason the server removed this client (an app's unsubscribe, or access revoked): do not rejoin.
        if (m.reason !== undefined) this.#removed(m.channel, m.reason);
        return;
      default:
        return; // pong
    }
  }

  #removed(channel: string, reason: string): void {
    if (!this.#wants(channel)) return;
    this.#handlers.delete(channel);
    this.#presence.delete(channel);
    this.#requested.delete(channel);
    this.#leave(channel);
    this.#events.emit('unsubscribed', channel, reason);
  }

  #message(m: Extract<ServerMessage, { type: 'msg' }>): void {
    if (!this.#wants(m.channel)) return;
    const verdict = this.#cursors.accept(m);
    if (verdict === 'duplicate') return;
    if (verdict === 'gap') {
      // Never deliver past a hole: reconnect from the cursor and let the gateway replay or reset.
      this.#transport?.close();
      this.#closed(CloseCode.ProtocolError, `missing offsets before ${m.offset} on ${m.channel}`, true);
      return;
    }
    if (verdict === 'reset') this.#events.emit('reset', m.channel);
    const message = { channel: m.channel, event: m.event, data: m.data, epoch: m.epoch, offset: m.offset };
    for (const h of [...(this.#handlers.get(m.channel) ?? [])]) safeCall(h, message as ChannelMessage);
  }

  #closed(code: number, reason: string, opened: boolean): void {
    this.#transport = null;
    // No session to use (it ended, or there never was one): retrying cannot help; the page signs in
    // and connects again.
    if (isFinalCloseCode(code)) {
      this.#stop('ended', code, reason);
      if (code !== CloseCode.SessionEnded && code !== CloseCode.Unauthorized) {
        this.#events.emit('disconnected', code, reason);
      }
      return;
    }
    if (opened && Date.now() - this.#openedAt >= this.#backoff.stableMs) this.#backoff.reset();
    const auto = (this.options.transport ?? 'auto') === 'auto';
    if (!opened && auto) {
      if (this.#mode === 'websocket' && ++this.#wsFailures >= this.#sseAfter && this.#EventSource) {
        this.#mode = 'sse';
      } else if (this.#mode === 'sse' && this.#WebSocket) {
        // SSE failed too: the gateway is more likely down than WebSocket blocked, so try WebSocket again.
        this.#mode = 'websocket';
        this.#wsFailures = 0;
      }
    }
    const delay = code === CloseCode.Restart ? this.#backoff.prompt() : this.#backoff.next();
    this.#setState('reconnecting', code, reason);
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  #stop(state: 'closed' | 'ended', code?: number, reason?: string): void {
    if (this.#state === 'closed' || this.#state === 'ended') return;
    clearTimeout(this.#timer);
    this.#transport?.close();
    this.#transport = null;
    this.#setState(state, code, reason);
  }

  #setState(state: ClientState, code?: number, reason?: string): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#events.emit('state', state, {
      transport: this.#mode,
      ...(code !== undefined ? { code } : {}),
      ...(reason ? { reason } : {}),
    });
  }
}

function missing(what: string): RealtimeError {
  return new RealtimeError(
    'ERR_SHOAL_NO_TRANSPORT',
    `this runtime has no ${what}: pass options.${what}${what === 'WebSocket' ? ' (in Node: the WebSocket class of the "ws" package)' : ''}`,
  );
}
