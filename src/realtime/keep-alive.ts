import { CloseCode } from '../protocol/messages.js';
import type { SessionManager } from '../session/manager.js';
import type { Connection } from './connection.js';

/**
 * Socket activity keeps the session alive: a touch (never a write), at most one per
 * `touchMs` per connection. A session found gone closes the connection with 4001.
 */
export class KeepAlive {
  constructor(
    readonly sessions: SessionManager,
    readonly end: (c: Connection, code: number, reason: string) => void,
  ) {}

  async touch(c: Connection): Promise<void> {
    const now = Date.now();
    if (!c.touchDue(now, this.sessions.options.touchMs)) return;
    const alive = await this.sessions.touch(c.sessionId, now).catch(() => true);
    if (!alive) this.end(c, CloseCode.SessionEnded, 'session ended');
  }
}
