import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { CloseCode } from '../protocol/messages.js';
import { loadSessionValues, NO_ATTRIBUTES } from '../session/attribute-values.js';
import type { SessionManager } from '../session/manager.js';
import { askConnectProxy, type ConnectProxyOptions } from './connect-proxy.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import { type Identity, sessionIdentity } from './identity.js';
import { checkOrigin } from './origin.js';
import type { TokenRefusal, TokenVerifier } from './tokens.js';
import { wsTransport } from './transports.js';

/** Why a handshake is closed at once with 4401: the page can tell it from a network failure. */
export const NO_SESSION_REASON = 'no session: sign in, then connect again';

/**
 * What a handshake comes to: who connects; `no-session`, answered by accepting the connection
 * and closing it with 4401; a refused token, answered the same way with its own code (4410,
 * 4411, 4013); or an HTTP refusal before any upgrade.
 */
export type Verdict =
  | { identity: Identity }
  | 'no-session'
  | { token: TokenRefusal }
  /** The connect proxy refused (its own code) or failed (4013, `failed` says how). */
  | { proxy: { code: number; reason: string; failed?: string } }
  | { refuse: 403 | 503; reason: 'origin' | 'draining' };

/**
 * Resolves a handshake. The Origin check comes before anything else, so a foreign page
 * (CSWSH) is refused before any upgrade and learns nothing about the session. A store that
 * cannot answer rejects: the caller refuses with 503, which clients retry.
 *
 * A `token` query parameter (the one way browsers can pass a credential to both WebSocket and
 * EventSource) authenticates instead of the cookie. It is not ambient, so a page on another
 * site cannot borrow it: the Origin may then be absent (native and server clients send none),
 * but when present it must still be an allowed one.
 */
export async function authenticate(
  req: IncomingMessage,
  /** What the connect proxy is told; WebSocket handshakes and SSE requests need an Origin, an SSE stream may lack one. */
  as: 'ws' | 'sse-stream' | 'sse-request',
  o: {
    sessions: SessionManager;
    origins: readonly string[];
    draining: boolean;
    tokens: TokenVerifier;
    connectProxy?: ConnectProxyOptions | undefined;
  },
): Promise<Verdict> {
  if (o.draining) return { refuse: 503, reason: 'draining' };
  const requireOrigin = as !== 'sse-stream';
  const token = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
  if (!checkOrigin(req.headers.origin, o.origins, requireOrigin && token === null)) {
    return { refuse: 403, reason: 'origin' };
  }
  if (token !== null) return tokenIdentity(token, o.tokens);
  if (o.connectProxy) {
    const v = await askConnectProxy(o.connectProxy, req, as === 'ws' ? 'ws' : 'sse');
    if ('identity' in v) return v;
    if ('refused' in v) return { proxy: v.refused };
    return {
      proxy: { code: CloseCode.AuthUnavailable, reason: 'authentication unavailable; retry', failed: v.failed },
    };
  }
  const { id: sid } = o.sessions.idFromCookie(req.headers.cookie);
  if (!sid) return 'no-session';
  const session = await loadSessionValues(o.sessions, sid);
  return session ? { identity: sessionIdentity(session) } : 'no-session';
}

async function tokenIdentity(token: string, tokens: TokenVerifier): Promise<Verdict> {
  const verdict = await tokens.verify(token);
  if ('refused' in verdict) return { token: verdict.refused };
  const { user, channels, expiresAt, info } = verdict.ok;
  return {
    identity: {
      source: 'token',
      sessionId: null,
      userId: user,
      attributes: NO_ATTRIBUTES,
      granted: channels,
      expiresAt,
      info,
    },
  };
}

/** What an HTTP refusal of a connect or an SSE request says in its JSON body. */
export function refusalText(reason: 'origin' | 'draining'): string {
  return reason === 'origin'
    ? "origin not allowed: the page's Origin must be one of the gateway's origins (SHOAL_ORIGINS)"
    : 'the gateway is draining for a restart: connect again, to another gateway';
}

function statusText(status: number): string {
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

/** Accepts a WebSocket only to close it with a refusal's code and reason (a token, the connect proxy). */
export function closeRefused(ws: WebSocket, code: number, reason: string): void {
  ws.on('error', ignore);
  wsTransport(ws).close(code, reason);
}

/** Counts a refused or failed connect-proxy answer; the handshake label is the close code. */
export function countProxyRefusal(
  metrics: GatewayMetrics,
  transport: 'ws' | 'sse',
  proxy: { code: number; failed?: string },
): void {
  metrics.handshakeRejected.inc({
    transport,
    status: String(proxy.code),
    reason: proxy.failed ? `proxy-${proxy.failed}` : 'proxy-refused',
  });
  if (proxy.failed) metrics.connectProxyFailures.inc({ reason: proxy.failed });
}
