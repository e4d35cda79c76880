import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { CloseCode } from '../protocol/messages.js';
import type { SessionManager } from '../session/manager.js';
import type { StoredSession } from '../stores/contract.js';
import { checkOrigin } from './origin.js';
import { wsTransport } from './transports.js';

/** Why a handshake is closed at once with 4401: the page can tell it from a network failure. */
export const NO_SESSION_REASON = 'no session: sign in, then connect again';

/**
 * What a handshake comes to: the live session; `no-session`, answered by accepting the
 * connection and closing it with 4401; or an HTTP refusal before any upgrade.
 */
export type Verdict = StoredSession | 'no-session' | { refuse: 403 | 503; reason: 'origin' | 'draining' };

/**
 * Resolves a handshake. The Origin check comes before anything else, so a foreign page
 * (CSWSH) is refused before any upgrade and learns nothing about the session. A store that
 * cannot answer rejects: the caller refuses with 503, which clients retry.
 */
export async function authenticate(
  req: IncomingMessage,
  requireOrigin: boolean,
  o: { sessions: SessionManager; origins: readonly string[]; draining: boolean },
): Promise<Verdict> {
  if (o.draining) return { refuse: 503, reason: 'draining' };
  if (!checkOrigin(req.headers.origin, o.origins, requireOrigin)) return { refuse: 403, reason: 'origin' };
  const { id: sid } = o.sessions.idFromCookie(req.headers.cookie);
  if (!sid) return 'no-session';
  return (await o.sessions.load(sid)) ?? 'no-session';
}

export function statusText(status: number): string {
  return ({ 403: 'Forbidden', 503: 'Service Unavailable' } as Record<number, string>)[status] ?? 'Error';
}

/** Ends an upgrade request with a bare HTTP status: nothing was upgraded. */
export function refuseUpgrade(socket: Duplex, status: number): void {
  socket.end(`HTTP/1.1 ${status} ${statusText(status)}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}

function ignore(): void {}

/** Not a closure: one over the upgrade's scope would keep its request alive as long as the socket. */
export function closeUnauthorized(ws: WebSocket): void {
  ws.on('error', ignore);
  wsTransport(ws).close(CloseCode.Unauthorized, NO_SESSION_REASON);
}
