import { CloseCode, isAppCloseCode, isFinalCloseCode, type ServerMessage } from '../protocol/index.js';
import { Backoff } from './backoff.js';
import { ChannelCursors } from './channel-state.js';
import { Listeners, safeCall } from './emitter.js';
import type { Endpoints } from './endpoints.js';
import { Follows } from './follows.js';
import { Requests } from './requests.js';
import { TokenKeeper, tokenError } from './token-keeper.js';
import type { Transport, TransportEvents } from './transport.js';
import { type Kind, TransportChoice } from './transport-choice.js';
import type {
  ChannelMessage,
  ClientEvents,
  ClientOptions,
  ClientState,
  EventMap,
  Hello,
  MessageHandler,
  PresenceChange,
  ShoalClient,
} from './types.js';
import { RealtimeError } from './types.js';

/**
 * The client core: what the app follows (handlers, presence listeners), where
 * it is in each channel (cursors), and one transport at a time. Every
 * (re)connect asks for all followed channels at once, from their cursors, in
 * the URL, so whichever gateway the balancer picks resumes them in one round trip.
 */
export class Client<E extends EventMap = EventMap> implements ShoalClient<E> {
  #state: ClientState = 'connecting';
  #hello: Hello | null = null;
  readonly #follows = new Follows();
  /** Only for clients given a `token` or `getToken`: cookie clients never wait for a token. */
  readonly #tokens: TokenKeeper | undefined;
  readonly #events = new Listeners<ClientEvents>();
  readonly #cursors = new ChannelCursors();
  readonly #backoff: Backoff;
  readonly #choice: TransportChoice;
  #transport: Transport | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #openedAt = 0;
  #reopenQueued = false;
  readonly #asked = new Requests(this.#cursors, () => this.#reopenSoon());

  constructor(
    readonly endpoints: Endpoints,
    readonly options: ClientOptions,
  ) {
    this.#choice = new TransportChoice(endpoints, options);
    this.#backoff = new Backoff(options.backoff, options.random);
    this.#tokens =
      options.token !== undefined || options.getToken ? new TokenKeeper(options.token, options.getToken) : undefined;
    // Deferred, so subscriptions made right after connect() ride along in the first URL.
    queueMicrotask(() => this.#connect());
  }

  get state(): ClientState {
    return this.#state;
  }

  get transport(): Kind {
    return this.#choice.mode;
  }

  get hello(): Hello | null {
    return this.#hello;
  }

  cursor(channel: string): { epoch: string; offset: number } | undefined {
    const c = this.#cursors.get(channel);
    return c ? { ...c } : undefined;
  }

  subscribe<F extends EventMap = E>(channel: string, handler: MessageHandler<F>): () => void {
    return this.#follows.add(
      'messages',
      channel,
      handler as MessageHandler,
      () => this.#join(channel),
      () => this.#leave(channel),
    );
  }

  unsubscribe(channel: string, handler?: MessageHandler<never>): void {
    if (this.#follows.removeHandlers(channel, handler as MessageHandler | undefined)) this.#leave(channel);
  }

  presence(channel: string, onChange: (users: string[], change: PresenceChange) => void): () => void {
    const known = this.#follows.lastPresence(channel);
    if (known) queueMicrotask(() => safeCall(onChange, [...known], { joined: [...known], left: [] }));
    const hadPresence = this.#follows.followsPresence(channel);
    const stop = this.#follows.add(
      'presence',
      channel,
      onChange,
      () => this.#join(channel),
      () => this.#leave(channel),
    );
    if (!hadPresence) this.#asked.askPresence(this.#transport, channel);
    return stop;
  }

  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void {
    return this.#events.add(event, listener);
  }

  close(): void {
    this.#stop('closed');
  }

  #join(channel: string): void {
    this.#asked.join(this.#transport, channel);
  }

  #leave(channel: string): void {
    this.#follows.forgetPresence(channel);
    this.#asked.leave(this.#transport, channel);
  }

  #connect(): void {
    this.#timer = undefined;
    if (this.#state === 'closed' || this.#state === 'ended') return;
    if (!this.#tokens) {
      this.#open(undefined);
      return;
    }
    this.#tokens.forConnect().then(
      (token) => this.#open(token),
      (err: unknown) => {
        this.#events.emit('error', tokenError(err));
        this.#setState('reconnecting');
        this.#timer = setTimeout(() => this.#connect(), this.#backoff.next());
      },
    );
  }

  #open(token: string | undefined): void {
    // The client may have been closed while getToken() ran.
    if (this.#state === 'closed' || this.#state === 'ended' || this.#transport) return;
    const params = this.#asked.connectParams(this.#follows.wanted(), this.#follows.presenceChannels(), token);
    const events: TransportEvents = {
      open: () => this.#opened(),
      frame: (m) => this.#frame(m),
      interrupted: () => this.#setState('reconnecting'),
      closed: (code, reason, opened) => this.#closed(code, reason, opened),
    };
    this.#transport = this.#choice.open(params, events);
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
    this.#choice.opened();
    if (this.#choice.mode === 'websocket') {
      // Reconcile what changed while the socket was connecting.
      for (const ch of this.#follows.wanted()) if (!this.#asked.requested.has(ch)) this.#join(ch);
      for (const ch of [...this.#asked.requested]) if (!this.#follows.wants(ch)) this.#leave(ch);
    }
  }

  #frame(m: ServerMessage): void {
    switch (m.type) {
      case 'hello': {
        const { type: _hello, ...hello } = m;
        this.#hello = { ...hello, channels: [...m.channels] };
        this.#asked.own = new Set(m.channels);
        if (m.expires !== undefined) this.#tokens?.schedule(m.expires, () => this.#refresh());
        // Open once the gateway admitted the session: a socket it accepts only to close (4401, 4429) never is.
        this.#setState('open');
        this.#events.emit('hello', this.#hello);
        return;
      }
      case 'subscribed':
        if (!this.#follows.wants(m.channel)) {
          // Left while the join was in flight (the gateway's own channels are simply ignored).
          if (!this.#asked.own.has(m.channel)) this.#transport?.send({ type: 'unsub', channel: m.channel });
          return;
        }
        this.#asked.joined.add(m.channel);
        if (this.#cursors.subscribed(m)) this.#events.emit('reset', m.channel);
        if (this.#follows.followsPresence(m.channel)) this.#asked.askPresenceFrame(this.#transport, m.channel);
        return;
      case 'msg':
        this.#message(m);
        return;
      case 'presence':
        if (this.#follows.wants(m.channel)) this.#follows.presenceChanged(m.channel, m.users);
        return;
      case 'refreshed':
        this.#tokens?.schedule(m.expires, () => this.#refresh());
        return;
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

  /**
   * A new token ahead of the old one's expiry: sent on an open WebSocket (`refresh`); an SSE
   * stream, which cannot send, is reopened with it from the cursors.
   */
  #refresh(): void {
    this.#tokens?.renew().then(
      (token) => {
        const t = this.#transport;
        if (t?.kind === 'websocket') t.send({ type: 'refresh', token });
        else if (t?.kind === 'sse') this.#reopenSoon();
      },
      // The gateway closes with 4411 at expiry; the reconnect asks getToken() again.
      (err: unknown) => this.#events.emit('error', tokenError(err)),
    );
  }

  #removed(channel: string, reason: string): void {
    if (!this.#follows.wants(channel)) return;
    this.#follows.drop(channel);
    this.#asked.requested.delete(channel);
    this.#leave(channel);
    this.#events.emit('unsubscribed', channel, reason);
  }

  #message(m: Extract<ServerMessage, { type: 'msg' }>): void {
    if (!this.#follows.wants(m.channel)) return;
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
    this.#follows.deliver(message as ChannelMessage);
  }

  #closed(code: number, reason: string, opened: boolean): void {
    this.#transport = null;
    this.#tokens?.stop();
    if (code === CloseCode.TokenExpired && this.#tokens?.renewable) {
      // Expired before a refresh got through: reconnect with a new token, resuming from the cursors.
      this.#tokens.drop();
      this.#setState('reconnecting', code, reason);
      this.#timer = setTimeout(() => this.#connect(), this.#backoff.next());
      return;
    }
    // No session to use (it ended, or there never was one): retrying cannot help; the page signs in
    // and connects again.
    if (isFinalCloseCode(code)) {
      this.#stop('ended', code, reason);
      if (isAppCloseCode(code)) this.#events.emit('disconnected', code, reason);
      return;
    }
    if (opened && Date.now() - this.#openedAt >= this.#backoff.stableMs) this.#backoff.reset();
    if (!opened) this.#choice.failedToOpen();
    const delay = code === CloseCode.Restart ? this.#backoff.prompt() : this.#backoff.next();
    this.#setState('reconnecting', code, reason);
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  #stop(state: 'closed' | 'ended', code?: number, reason?: string): void {
    if (this.#state === 'closed' || this.#state === 'ended') return;
    clearTimeout(this.#timer);
    this.#tokens?.stop();
    this.#transport?.close();
    this.#transport = null;
    this.#setState(state, code, reason);
  }

  #setState(state: ClientState, code?: number, reason?: string): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#events.emit('state', state, {
      transport: this.#choice.mode,
      ...(code !== undefined ? { code } : {}),
      ...(reason ? { reason } : {}),
    });
  }
}
