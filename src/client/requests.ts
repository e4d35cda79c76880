import { encodeCursors } from '../protocol/index.js';
import type { ChannelCursors } from './channel-state.js';
import type { Transport } from './transport.js';

/**
 * What the current connection asked the gateway for, and how: channels in the connect URL or
 * with `sub`, which of them were answered with `subscribed`, presence asked for. Over SSE, which
 * cannot send frames, any change reopens the stream (`reopen`) with a new URL instead.
 */
export class Requests {
  requested = new Set<string>();
  joined = new Set<string>();
  #presenceAsked = new Set<string>();
  /** The channels the gateway joined on its own (hello). */
  own = new Set<string>();

  constructor(
    readonly cursors: ChannelCursors,
    readonly reopen: () => void,
  ) {}

  /**
   * A new connection's query: every wanted channel, from its cursor (`resume=`) or fresh
   * (`channels=`), the presence channels, and the connection token when there is one.
   */
  connectParams(wanted: string[], presence: string[], token: string | undefined): URLSearchParams {
    const cursors = this.cursors.snapshot(wanted);
    const params = new URLSearchParams();
    const fresh = wanted.filter((ch) => !cursors.has(ch));
    if (fresh.length > 0) params.set('channels', fresh.join(','));
    if (cursors.size > 0) params.set('resume', encodeCursors(cursors));
    if (presence.length > 0) params.set('presence', presence.join(','));
    if (token !== undefined) params.set('token', token);
    this.requested = new Set(wanted);
    this.joined = new Set();
    // Over WebSocket presence is also asked with a frame once joined (an answer twice is harmless).
    this.#presenceAsked = new Set();
    return params;
  }

  /** With `token` (a subscription token), only over WebSocket: the SSE URL has no per-channel token. */
  join(t: Transport | null, channel: string, token?: string): void {
    if (!t) return; // the next connect asks for it
    if (t.kind === 'sse') {
      if (token === undefined) this.reopen();
      return;
    }
    const from = this.cursors.get(channel);
    if (t.send({ type: 'sub', channel, ...(from ? { from } : {}), ...(token ? { token } : {}) })) {
      this.requested.add(channel);
    }
  }

  leave(t: Transport | null, channel: string): void {
    this.cursors.delete(channel);
    this.joined.delete(channel);
    this.#presenceAsked.delete(channel);
    if (!t) return;
    if (t.kind === 'sse') {
      this.reopen();
      return;
    }
    // The gateway closes ended sessions through their session channel: never leave it.
    if (!this.requested.has(channel) || channel.startsWith('session:')) return;
    if (t.send({ type: 'unsub', channel })) this.requested.delete(channel);
  }

  /** Over SSE presence rides in the URL (`presence=`), so a new presence channel reopens the stream. */
  askPresence(t: Transport | null, channel: string): void {
    if (t?.kind === 'sse') this.reopen();
    else this.askPresenceFrame(t, channel);
  }

  askPresenceFrame(t: Transport | null, channel: string): void {
    // The gateway answers `presence` only for a joined channel, so wait for `subscribed`.
    if (t?.kind !== 'websocket' || !this.joined.has(channel) || this.#presenceAsked.has(channel)) return;
    if (t.send({ type: 'presence', channel })) this.#presenceAsked.add(channel);
  }
}
