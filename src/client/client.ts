import { CloseCode, type ServerMessage } from '../protocol/index.js';
import { afterClose } from './after-close.js';
import { Backoff } from './backoff.js';
import { Calls, requestUrlOf } from './calls.js';
import { Listeners } from './emitter.js';
import type { Endpoints } from './endpoints.js';
import { FollowedChannels } from './followed-channels.js';
import { TokenKeeper, tokenError } from './token-keeper.js';
import type { Transport, TransportEvents } from './transport.js';
import { type Kind, TransportChoice } from './transport-choice.js';
import {
  type ClientEvents,
  type ClientOptions,
  type ClientState,
  type EventMap,
  type Hello,
  type MessageHandler,
  type PresenceChange,
  RealtimeError,
  type ShoalClient,
  type SubscribeOptions,
} from './types.js';

/**
 * The client core: one transport at a time, its state, tokens and reconnects. Every (re)connect asks
 * for all followed channels from their cursors in the URL (followed-channels.ts), so whichever
 * gateway the balancer picks resumes them in one round trip. Requests wait for a transport (calls.ts).
 */
export class Client<E extends EventMap = EventMap> implements ShoalClient<E> {
  #state: ClientState = 'connecting';
  #hello: Hello | null = null;
  /** Only for clients given a `token` or `getToken`: cookie clients never wait for a token. */
  readonly #tokens: TokenKeeper | undefined;
  readonly #events = new Listeners<ClientEvents>();
  readonly #backoff: Backoff;
  readonly #choice: TransportChoice;
  #transport: Transport | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #openedAt = 0;
  #reopenQueued = false;
  readonly #channels = new FollowedChannels({
    transport: () => this.#transport,
    reopenSoon: () => this.#reopenSoon(),
    gap: (reason) => {
      this.#transport?.close();
      this.#closed(CloseCode.ProtocolError, reason, true);
    },
    events: this.#events,
  });
  readonly #calls: Calls;

  constructor(
    readonly endpoints: Endpoints,
    readonly options: ClientOptions,
  ) {
    this.#choice = new TransportChoice(endpoints, options);
    this.#backoff = new Backoff(options.backoff, options.random);
    this.#calls = new Calls(
      () => requestUrlOf(endpoints.sse, this.#tokens?.current),
      () => options.fetch,
    );
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
    return this.#channels.cursor(channel);
  }

  subscribe<F extends EventMap = E>(channel: string, handler: MessageHandler<F>, o?: SubscribeOptions): () => void {
    return this.#channels.subscribe(channel, handler as MessageHandler, o);
  }

  unsubscribe(channel: string, handler?: MessageHandler<never>): void {
    this.#channels.unsubscribe(channel, handler as MessageHandler | undefined);
  }

  presence(channel: string, onChange: (users: string[], change: PresenceChange) => void): () => void {
    return this.#channels.presence(channel, onChange);
  }

  rpc: ShoalClient['rpc'] = (method, data, o) => this.#calls.rpc(this.#transport, method, data, o) as never;
  publish: ShoalClient['publish'] = (...a) => this.#calls.publish(this.#transport, ...a) as never;
  history: ShoalClient['history'] = (channel, o) => this.#calls.history(this.#transport, channel, o) as never;
  presenceInfo: ShoalClient['presenceInfo'] = (channel, o) =>
    this.#calls.start(this.#transport, (id) => ({ type: 'clients', id, channel }), o?.timeoutMs) as never;

  on<K extends keyof ClientEvents>(event: K, listener: ClientEvents[K]): () => void {
    return this.#events.add(event, listener);
  }

  close(): void {
    this.#stop('closed');
  }

  #connect(): void {
    this.#timer = undefined;
    if (this.#state === 'closed' || this.#state === 'ended') return;
    if (!this.#tokens) this.#open(undefined);
    else
      this.#tokens.forConnect().then(
        (token) => this.#open(token),
        (err: unknown) => {
          this.#events.emit('error', tokenError(err));
          this.#reconnectIn(this.#backoff.next());
        },
      );
  }

  #reconnectIn(delay: number, code?: number, reason?: string): void {
    this.#setState('reconnecting', code, reason);
    this.#timer = setTimeout(() => this.#connect(), delay);
  }

  #open(token: string | undefined): void {
    // The client may have been closed while getToken() ran.
    if (this.#state === 'closed' || this.#state === 'ended' || this.#transport) return;
    const params = this.#channels.connectParams(token);
    const events: TransportEvents = {
      open: () => this.#opened(),
      frame: (m) => this.#frame(m),
      interrupted: () => this.#setState('reconnecting'),
      closed: (code, reason, opened) => this.#closed(code, reason, opened),
    };
    this.#transport = this.#choice.open(params, events);
  }

  /** SSE cannot send `sub`/`unsub`: a change of channels reopens the stream (once a tick) from the cursors. */
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
    if (this.#choice.mode === 'websocket') this.#channels.reconcile();
  }

  #frame(m: ServerMessage): void {
    if (this.#channels.frame(m)) return;
    switch (m.type) {
      case 'hello': {
        const { type: _hello, ...hello } = m;
        this.#hello = { ...hello, channels: [...m.channels] };
        this.#channels.joinedByGateway(m.channels, m.starts);
        if (m.expires !== undefined) this.#tokens?.schedule(m.expires, () => this.#refresh());
        // Open once the gateway admitted the session: a socket it accepts only to close (4401, 4429) never is.
        this.#setState('open');
        this.#events.emit('hello', this.#hello);
        this.#calls.flush(this.#transport);
        return;
      }
      case 'refreshed':
        this.#tokens?.schedule(m.expires, () => this.#refresh());
        return;
      case 'error':
        this.#events.emit('error', new RealtimeError(m.code, m.message, m.channel));
        return;
      case 'reply':
        this.#calls.settle(m);
        return;
      default:
        return; // pong
    }
  }

  /** A new token before the old one expires: a `refresh` frame on WebSocket; SSE reopens with it. */
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

  #closed(code: number, reason: string, opened: boolean): void {
    this.#transport = null;
    this.#calls.lost(reason || `closed with ${code}`);
    this.#tokens?.stop();
    const renewable = this.#tokens?.renewable ?? false;
    const next = afterClose(code, {
      opened,
      openedAt: this.#openedAt,
      renewable,
      backoff: this.#backoff,
      choice: this.#choice,
    });
    if (next.action === 'end') {
      this.#stop('ended', code, reason);
      if (next.disconnected) this.#events.emit('disconnected', code, reason);
      return;
    }
    if (next.action === 'renew') this.#tokens?.drop();
    this.#reconnectIn(next.delay, code, reason);
  }

  #stop(state: 'closed' | 'ended', code?: number, reason?: string): void {
    if (this.#state === 'closed' || this.#state === 'ended') return;
    clearTimeout(this.#timer);
    this.#tokens?.stop();
    this.#transport?.close();
    this.#transport = null;
    this.#calls.lost(state);
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
