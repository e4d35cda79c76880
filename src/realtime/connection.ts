import type { Bus, BusMessage } from '../bus/contract.js';
import { type Cursor, encodeCursors, type ServerMessage } from '../protocol/messages.js';
import type { Identity } from './identity.js';

/** How bytes reach one client: a WebSocket or an SSE response. */
export interface Transport {
  readonly kind: 'ws' | 'sse';
  /** Bytes accepted but not yet written to the network. */
  buffered(): number;
  sendMessage(frame: string, cursorId: () => string): void;
  /** Asks the peer for a sign of life (a WebSocket ping; SSE has no way back, its stream beats on its own). */
  ping(): void;
  close(code: number, reason: string): void;
}

/** The reason `unsubscribed` gives when a server command (`realtime.unsubscribe`, POST /unsubscribe) removed the connection. */
export const REMOVED_BY_SERVER = 'removed by the server';

export interface ChannelState {
  /** '' while a join does not know where delivery starts yet (a `sub` without `from`, being read). */
  epoch: string;
  offset: number;
  /** While replaying history, live messages wait here (then deduplicated by offset). */
  pending: BusMessage[] | null;
  presence: boolean;
  /** The join has told the client `subscribed`: a second `sub` now answers where the channel is. */
  answered: boolean;
}

/**
 * One client connection on a gateway. Per channel it keeps the last offset
 * delivered, so delivery is exactly-once and in order whatever arrives from
 * the bus: duplicates are dropped, a gap is filled from history, and a lost
 * history (new epoch) is announced as recovered:false — never a partial replay.
 */
export class Connection {
  readonly channels = new Map<string, ChannelState>();
  #lastTouch = 0;
  #alive = true;
  #closed = false;
  /** Bound once: a fan-out calls #write per message per socket, and a closure each time is garbage each time. */
  readonly #cursorId = () => this.cursorId();
  /**
   * The channel of the last delivery and its state. A fan-out delivers each message to every
   * socket with the same channel string, so this is a pointer comparison where a lookup in
   * each socket's own map would compare the name's characters (its keys are other strings).
   */
  #lastChannel: string | undefined;
  #lastState: ChannelState | undefined;
  /** The shoal session (cookie connections); null for a token connection. */
  readonly sessionId: string | null;
  readonly userId: string | null;
  /** The handshake's Cookie and allowlisted headers, kept only when an RPC proxy needs them. */
  forwarded: Record<string, string> = {};
  /**
   * `hello`, and any frame after it, until the connection's start positions are read (holdBehind).
   * Each frame keeps the SSE event id of its moment: the cursors at release would be ahead of it.
   */
  #held: { hello: ServerMessage; frames: { frame: string; id: string }[]; bytes: number } | null = null;

  constructor(
    readonly id: string,
    /** Who the handshake proved; replaced (same user) when a token connection refreshes its token. */
    public identity: Identity,
    readonly transport: Transport,
    readonly bus: Bus,
    readonly maxBuffered: number,
    readonly onOverflow: (conn: Connection) => void,
  ) {
    this.sessionId = identity.sessionId;
    this.userId = identity.userId;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True the first time only: every close path runs its cleanup exactly once. */
  markClosed(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    return true;
  }

  /** The peer answered a ping. */
  heard(): void {
    this.#alive = true;
  }

  /** One heartbeat: false when the previous ping went unanswered, else pings again. */
  beat(): boolean {
    if (!this.#alive) return false;
    this.#alive = false;
    this.transport.ping();
    return true;
  }

  /** Whether a session touch is due (at most one per `everyMs`); when it is, counts it as done. */
  touchDue(now: number, everyMs: number): boolean {
    if (now - this.#lastTouch < everyMs) return false;
    this.#lastTouch = now;
    return true;
  }

  /** Starts sending this channel's presence changes; false when the connection is not in the channel. */
  followPresence(channel: string): boolean {
    const state = this.channels.get(channel);
    if (!state) return false;
    state.presence = true;
    return true;
  }

  followsPresence(channel: string): boolean {
    return this.channels.get(channel)?.presence === true;
  }

  send(message: ServerMessage): void {
    this.#write(JSON.stringify(message));
  }

  /**
   * Sends `hello` only at release(), and any frame meant for the client until then behind it: the
   * client is `open` once it hears hello, which must wait for the start positions of the channels
   * it asked for (resumeChannels), and hello is the first frame a client reads.
   */
  holdBehind(hello: ServerMessage): void {
    this.#held = { hello, frames: [], bytes: 0 };
  }

  /**
   * Channels a server command removed the connection from while it was still opening, before it
   * joined them (their authorization was still being decided): resumeChannels does not join them.
   * Kept until hello; by then the connection is a member of every channel it will join.
   */
  #removedWhileOpening: Set<string> | null = new Set();

  /** Records a server command's removal from a channel not joined yet (nothing once the connection is open). */
  removeWhileOpening(channel: string): void {
    this.#removedWhileOpening?.add(channel);
  }

  removedWhileOpening(channel: string): boolean {
    return this.#removedWhileOpening?.has(channel) === true;
  }

  /** Sends the held hello, with where each channel joined without a cursor starts, then what was held, in order. */
  release(starts?: ReadonlyMap<string, Cursor>): void {
    this.#removedWhileOpening = null;
    const held = this.#held;
    if (!held) return;
    this.#held = null;
    this.send(
      starts?.size && held.hello.type === 'hello' ? { ...held.hello, starts: Object.fromEntries(starts) } : held.hello,
    );
    for (const { frame, id } of held.frames) this.#write(frame, () => id);
  }

  #write(frame: string, cursorId: () => string = this.#cursorId): void {
    if (this.#closed) return;
    const held = this.#held;
    if (this.transport.buffered() + (held?.bytes ?? 0) + frame.length > this.maxBuffered) {
      this.onOverflow(this);
      return;
    }
    if (held) {
      // Only SSE puts the id on the wire (on messages): WebSocket frames need none.
      held.frames.push({ frame, id: this.transport.kind === 'sse' ? cursorId() : '' });
      held.bytes += frame.length;
    } else this.transport.sendMessage(frame, cursorId);
  }

  /** SSE event id: every channel's position, so Last-Event-ID resumes all of them. */
  cursorId(): string {
    const cursors = new Map<string, Cursor>();
    for (const [ch, s] of this.channels) {
      // A join that does not know its start yet has no cursor to give.
      if (s.epoch !== '') cursors.set(ch, { epoch: s.epoch, offset: s.offset });
    }
    return encodeCursors(cursors);
  }

  /**
   * A channel's place, made before its join reads where delivery starts: live messages wait in
   * it, server commands see the connection in the channel, and a leave before the join answers
   * cancels the join.
   */
  enter(channel: string, at?: Cursor): ChannelState {
    // `at`, where the join will start, is the client's cursor meanwhile (an SSE event id carries it).
    const state: ChannelState = {
      epoch: at?.epoch ?? '',
      offset: at?.offset ?? 0,
      pending: [],
      presence: false,
      answered: false,
    };
    this.channels.set(channel, state);
    this.#lastChannel = undefined;
    return state;
  }

  /**
   * Joins a channel. Without `from`, delivery starts after the current position.
   * With `from`, everything after it is replayed first when history still has it.
   * Resolves to what the client is told in `subscribed`; null when the channel was left while
   * the join read (the client was told `unsubscribed` then, and hears nothing more of it).
   */
  async join(
    channel: string,
    from?: Cursor,
    state = this.enter(channel),
  ): Promise<{ epoch: string; offset: number; recovered: boolean } | null> {
    if (this.channels.get(channel) !== state) return null;
    let replayed = false;
    let replay: BusMessage[] = [];
    if (from) {
      const r = await this.#readAll(channel, from);
      if (this.channels.get(channel) !== state) return null;
      if (r) {
        replayed = true;
        state.epoch = r.epoch;
        state.offset = r.after;
        replay = r.messages;
      }
    }
    if (!replayed) {
      const pos = await this.bus.position(channel);
      if (this.channels.get(channel) !== state) return null;
      state.epoch = pos.epoch;
      state.offset = pos.offset;
    }
    // Without `from` nothing was asked back, so nothing is missing: every message after the position follows.
    const answer = { epoch: state.epoch, offset: state.offset, recovered: replayed || !from };
    state.answered = true;
    this.send({ type: 'subscribed', channel, ...answer });
    const pending = state.pending ?? [];
    state.pending = null;
    for (const m of [...replay, ...pending]) this.deliver(m, frameOf(m));
    return answer;
  }

  leave(channel: string): void {
    this.channels.delete(channel);
    this.#lastChannel = undefined;
    this.#lastState = undefined;
  }

  /** Delivers one bus message with its pre-encoded frame (encoded once per gateway, not per socket). */
  deliver(m: BusMessage, frame: string): void {
    let state = this.#lastState;
    if (m.channel !== this.#lastChannel) {
      state = this.channels.get(m.channel);
      this.#lastChannel = m.channel;
      this.#lastState = state;
    }
    if (!state) return;
    if (state.pending) {
      state.pending.push(m);
      return;
    }
    if (m.epoch !== state.epoch) {
      if (m.continues !== undefined && m.continues.epoch === state.epoch) {
        // A promoted replica carries the log on under a new epoch: nothing to reload.
        this.#moveTo(m.channel, state, m.epoch, Math.min(state.offset, m.continues.offset), true);
      } else {
        // The channel's log was lost under a live subscription: restart from this message.
        this.#moveTo(m.channel, state, m.epoch, m.offset - 1, false);
      }
    }
    if (m.offset <= state.offset) return;
    if (m.offset === state.offset + 1) {
      state.offset = m.offset;
      // Equal text; keeping the bus's own string makes the next comparison a pointer check
      // (a bus hands every message of an epoch the same string: the check runs per socket).
      state.epoch = m.epoch;
      this.#write(frame);
      return;
    }
    void this.#fillGap(m.channel, state, m);
  }

  async #fillGap(channel: string, state: ChannelState, trigger: BusMessage): Promise<void> {
    state.pending = [trigger];
    const missed = await this.#readAll(channel, { epoch: state.epoch, offset: state.offset }).catch(() => null);
    const pending = state.pending ?? [];
    state.pending = null;
    if (!missed) {
      const pos = await this.bus.position(channel).catch(() => ({ epoch: trigger.epoch, offset: trigger.offset }));
      this.#moveTo(channel, state, pos.epoch, pos.offset, false);
    } else if (missed.epoch !== state.epoch) {
      // The log moved on to an epoch that continues ours (a promoted replica).
      this.#moveTo(channel, state, missed.epoch, missed.after, true);
    }
    for (const m of [...(missed?.messages ?? []), ...pending]) this.deliver(m, frameOf(m));
  }

  /** Moves a channel's position and tells the client where delivery goes on from, and whether anything was lost. */
  #moveTo(channel: string, state: ChannelState, epoch: string, offset: number, recovered: boolean): void {
    state.epoch = epoch;
    state.offset = offset;
    this.send({ type: 'subscribed', channel, epoch, offset, recovered });
  }

  /**
   * Everything after `from`, paging through history; null when it cannot be had without a gap.
   * The messages follow (epoch, after): `from` itself, or the position in a later epoch that
   * continues it (ReadResult.from).
   */
  async #readAll(
    channel: string,
    from: Cursor,
  ): Promise<{ epoch: string; after: number; messages: BusMessage[] } | null> {
    const out: BusMessage[] = [];
    let epoch = from.epoch;
    let resumed: { epoch: string; after: number } | undefined;
    let after = from.offset;
    for (let page = 0; page < 100; page++) {
      const r = await this.bus.read(channel, after, { epoch, limit: 1000 });
      if (!r.complete) return null;
      if (r.epoch !== epoch) {
        // Only a first page may move to a continuing epoch: a later one would leave a hole in `out`.
        if (r.from === undefined || page > 0) return null;
        epoch = r.epoch;
        after = r.from;
      }
      resumed ??= { epoch, after };
      out.push(...r.messages);
      const last = r.messages.at(-1);
      if (!last || r.messages.length < 1000) return { ...resumed, messages: out };
      after = last.offset;
    }
    return null;
  }
}

/** The client frame for a bus message; `data` is already JSON text, so it is spliced, not re-encoded. */
export function frameOf(m: BusMessage): string {
  return `{"type":"msg","channel":${JSON.stringify(m.channel)},"epoch":${JSON.stringify(m.epoch)},"offset":${m.offset},"event":${JSON.stringify(m.event)},"data":${m.data}}`;
}
