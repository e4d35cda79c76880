import type { Cursor, ServerMessage } from '../protocol/index.js';
import { ChannelCursors } from './channel-state.js';
import { type Listeners, safeCall } from './emitter.js';
import { Follows } from './follows.js';
import { Requests } from './requests.js';
import { SubTokens } from './sub-tokens.js';
import { tokenError } from './token-keeper.js';
import type { Transport } from './transport.js';
import type { ChannelMessage, ClientEvents, MessageHandler, PresenceChange, SubscribeOptions } from './types.js';

/** What the channels need of the connection they ride on. */
export interface ChannelLink {
  /** The open transport, if any. */
  transport(): Transport | null;
  /** SSE cannot send `sub`/`unsub`: reopen the stream with the new channels. */
  reopenSoon(): void;
  /** A hole in a channel's offsets: drop the connection and resume from the cursors. */
  gap(reason: string): void;
  readonly events: Listeners<ClientEvents>;
}

/**
 * The channels the app follows and where it is in each (cursors), kept across connections: joins
 * and leaves as handlers come and go, the connect URL's channels, and the channel frames
 * (`subscribed`, `msg`, `presence`, `unsubscribed`).
 */
export class FollowedChannels {
  readonly #follows = new Follows();
  readonly #cursors = new ChannelCursors();
  readonly #asked: Requests;
  readonly #subTokens = new SubTokens();

  constructor(private readonly link: ChannelLink) {
    this.#asked = new Requests(this.#cursors, () => link.reopenSoon());
  }

  cursor(channel: string): { epoch: string; offset: number } | undefined {
    const c = this.#cursors.get(channel);
    return c ? { ...c } : undefined;
  }

  subscribe(channel: string, handler: MessageHandler, o?: SubscribeOptions): () => void {
    this.#subTokens.set(channel, o);
    return this.#follows.add('messages', channel, handler, ...this.#hooks(channel));
  }

  unsubscribe(channel: string, handler?: MessageHandler): void {
    if (this.#follows.removeHandlers(channel, handler)) this.#leave(channel);
  }

  presence(channel: string, onChange: (users: string[], change: PresenceChange) => void): () => void {
    const known = this.#follows.lastPresence(channel);
    if (known) queueMicrotask(() => safeCall(onChange, [...known], { joined: [...known], left: [] }));
    const hadPresence = this.#follows.followsPresence(channel);
    const stop = this.#follows.add('presence', channel, onChange, ...this.#hooks(channel));
    if (!hadPresence) this.#asked.askPresence(this.link.transport(), channel);
    return stop;
  }

  /** A new connection's query: every followed channel not joined with a subscription token, and presence. */
  connectParams(token: string | undefined): URLSearchParams {
    const wanted = this.#follows.wanted().filter((ch) => !this.#subTokens.has(ch)); // joined with `sub` frames
    return this.#asked.connectParams(wanted, this.#follows.presenceChannels(), token);
  }

  /** A WebSocket opened: reconcile what changed while it was connecting. */
  reconcile(): void {
    for (const ch of this.#follows.wanted()) if (!this.#asked.requested.has(ch)) this.#join(ch);
    for (const ch of [...this.#asked.requested]) if (!this.#follows.wants(ch)) this.#leave(ch);
  }

  /**
   * From hello: the channels the gateway joined on its own, and where each channel joined without a
   * cursor starts. That start is the cursor from now on: an SSE stream reopened for a channel
   * subscribed next, or a reconnect, before its `subscribed` resumes from it. Without it the channel
   * would be asked for afresh, and start past what was published since hello.
   */
  joinedByGateway(channels: readonly string[], starts: Readonly<Record<string, Cursor>> = {}): void {
    this.#asked.own = new Set(channels);
    for (const [channel, start] of Object.entries(starts)) {
      if (this.#follows.wants(channel)) this.#cursors.start(channel, start);
    }
  }

  /** A channel frame; false for any other. */
  frame(m: ServerMessage): boolean {
    switch (m.type) {
      case 'subscribed':
        this.#subscribed(m);
        return true;
      case 'msg':
        this.#message(m);
        return true;
      case 'presence':
        if (this.#follows.wants(m.channel)) this.#follows.presenceChanged(m.channel, m.users);
        return true;
      case 'unsubscribed':
        // With a reason the server removed this client (an app's unsubscribe, or access revoked): do not rejoin.
        if (m.reason === 'token expired' && this.#subTokens.expired(m.channel)) {
          this.#asked.requested.delete(m.channel);
          this.#join(m.channel); // from its cursor, with a fresh token
        } else if (m.reason !== undefined) this.#removed(m.channel, m.reason);
        return true;
      default:
        return false;
    }
  }

  /** What the first handler of a channel and the last one's removal do. */
  #hooks = (channel: string): [() => void, () => void] => [() => this.#join(channel), () => this.#leave(channel)];

  #join(channel: string): void {
    const join = (token?: string) => {
      if (this.#follows.wants(channel)) this.#asked.join(this.link.transport(), channel, token);
    };
    this.#subTokens.join(channel, join, (err) => this.link.events.emit('error', tokenError(err)));
  }

  #leave(channel: string): void {
    if (!this.#follows.wants(channel)) this.#subTokens.delete(channel);
    this.#follows.forgetPresence(channel);
    this.#asked.leave(this.link.transport(), channel);
  }

  #subscribed(m: Extract<ServerMessage, { type: 'subscribed' }>): void {
    const channel = m.channel;
    if (!this.#follows.wants(channel)) {
      // Left while the join was in flight (the gateway's own channels are simply ignored).
      if (!this.#asked.own.has(channel)) this.link.transport()?.send({ type: 'unsub', channel });
      return;
    }
    this.#asked.joined.add(channel);
    if (this.#cursors.subscribed(m)) this.link.events.emit('reset', channel);
    if (this.#follows.followsPresence(channel)) this.#asked.askPresenceFrame(this.link.transport(), channel);
  }

  #removed(channel: string, reason: string): void {
    if (!this.#follows.wants(channel)) return;
    this.#follows.drop(channel);
    this.#asked.requested.delete(channel);
    this.#leave(channel);
    this.link.events.emit('unsubscribed', channel, reason);
  }

  #message(m: Extract<ServerMessage, { type: 'msg' }>): void {
    if (!this.#follows.wants(m.channel)) return;
    const verdict = this.#cursors.accept(m);
    if (verdict === 'duplicate') return;
    if (verdict === 'gap') {
      // Never deliver past a hole: reconnect from the cursor and let the gateway replay or reset.
      this.link.gap(`missing offsets before ${m.offset} on ${m.channel}`);
      return;
    }
    if (verdict === 'reset') this.link.events.emit('reset', m.channel);
    const message = { channel: m.channel, event: m.event, data: m.data, epoch: m.epoch, offset: m.offset };
    this.#follows.deliver(message as ChannelMessage);
  }
}
