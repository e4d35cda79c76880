import { ConfigError } from '../core/errors.js';
import { CloseCode } from '../protocol/messages.js';
import type { SessionManager } from '../session/manager.js';
import type { Connection } from './connection.js';

/**
 * What keeps a session alive while it has a realtime connection, the same for WebSocket and SSE:
 * - `'open'` (default): an open connection does, as a page does while it is on screen. Each
 *   connection touches its session at most once per `touchMs` (the session's touch interval),
 *   whether traffic flows or not; a live dashboard that only receives stays signed in.
 * - `'inbound'`: only frames from the client do (an SSE stream sends none, so it never does).
 * - `false`: nothing on the gateway does; only web requests keep the session alive.
 * Whatever the rule, every open connection re-checks its session once per `touchMs` and closes
 * with 4001 when it is gone, also on stores that announce no expiry (memcached).
 */
export type KeepSessionAlive = 'open' | 'inbound' | false;

/** SHOAL_KEEP_SESSION_ALIVE: open | inbound | off; unset leaves the app definition's choice. */
export function keepSessionAliveFromEnv(value: string | undefined): KeepSessionAlive | undefined {
  if (!value) return undefined;
  if (value === 'open' || value === 'inbound') return value;
  if (value === 'off' || value === 'false') return false;
  throw new ConfigError(
    `SHOAL_KEEP_SESSION_ALIVE=${value} is not a rule: use open (an open connection keeps its session alive), ` +
      'inbound (only frames from the client) or off (only web requests)',
  );
}

export class KeepAlive {
  #timer: NodeJS.Timeout | undefined;
  #passes = 0;

  constructor(
    readonly sessions: SessionManager,
    readonly rule: KeepSessionAlive,
    readonly end: (c: Connection, code: number, reason: string) => void,
  ) {
    if (rule !== 'open' && rule !== 'inbound' && rule !== false) {
      throw new TypeError(`keepSessionAlive must be 'open', 'inbound' or false, not ${JSON.stringify(rule)}`);
    }
  }

  get #everyMs(): number {
    return this.sessions.config.touchMs;
  }

  /** A frame from the client. */
  inbound(c: Connection): void {
    if (this.rule === false || c.sessionId === null) return;
    const now = Date.now();
    if (c.touchDue(now, this.#everyMs)) this.#settle([c], this.sessions.touch(c.sessionId, now));
  }

  /**
   * Starts the periodic pass over the open connections, a quarter of the touch interval apart:
   * under `'open'` each connection's touch comes within 1.25 intervals of the last, and the
   * touches of many connections spread out as their connect times do.
   */
  start(list: () => Iterable<Connection>): void {
    this.#timer = setInterval(() => this.#pass(list()), Math.max(50, Math.floor(this.#everyMs / 4)));
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #pass(connections: Iterable<Connection>): void {
    const now = Date.now();
    const open = this.rule === 'open';
    // Under the other rules, a look (not a touch) at every session once per interval.
    if (!open && this.#passes++ % 4 !== 0) return;
    // Tabs of one session share one store call per pass.
    const bySession = new Map<string, Connection[]>();
    for (const c of connections) {
      // A token connection has no session to keep alive or look at: its token's expiry ends it.
      if (c.closed || c.sessionId === null || (open && !c.touchDue(now, this.#everyMs))) continue;
      const same = bySession.get(c.sessionId);
      if (same) same.push(c);
      else bySession.set(c.sessionId, [c]);
    }
    for (const [id, conns] of bySession) {
      this.#settle(conns, open ? this.sessions.touch(id, now) : this.sessions.load(id).then((s) => s !== null));
    }
  }

  /** A session found gone ends its connections; a store that cannot answer is not an end. */
  #settle(conns: Connection[], alive: Promise<boolean>): void {
    alive.then(
      (yes) => {
        if (!yes) for (const c of conns) this.end(c, CloseCode.SessionEnded, 'session ended');
      },
      () => {},
    );
  }
}
