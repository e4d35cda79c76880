import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { CloseCode } from '../protocol/messages.js';
import { forwardedHeaders } from './app-call.js';
import type { Connection } from './connection.js';
import { handleFrame } from './dispatch.js';
import { authenticate, closeRefused, closeUnauthorized, countProxyRefusal, refuseUpgrade } from './handshake.js';
import type { Identity } from './identity.js';
import type { GatewayParts } from './parts.js';
import { RateLimit } from './rate-limit.js';
import { openConnection } from './resume.js';
import { wsTransport } from './transports.js';

/** The WebSocket side of a gateway: handshakes on the HTTP server's `upgrade`, then frames. */
export function createWsUpgrade(p: GatewayParts): {
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
} {
  const wss = new WebSocketServer({ noServer: true, maxPayload: p.s.maxMessageBytes, perMessageDeflate: false });
  const rejected = (status: number, reason: string) =>
    p.metrics.handshakeRejected.inc({ transport: 'ws', status: String(status), reason });

  return {
    onUpgrade(req, socket, head) {
      socket.on('error', destroySelf);
      const o = {
        sessions: p.s.sessions,
        origins: p.s.origins,
        draining: p.state.draining,
        tokens: p.s.tokens,
        connectProxy: p.s.connectProxy,
      };
      authenticate(req, 'ws', o).then(
        (session) => {
          if (session === 'no-session') {
            // Accepted only to close it: a refused handshake reaches the page as 1006 (a network
            // failure, retried forever), a close code says why.
            rejected(CloseCode.Unauthorized, 'no-session');
            wss.handleUpgrade(req, socket, head, closeUnauthorized);
            return;
          }
          if ('refuse' in session) {
            rejected(session.refuse, session.reason);
            refuseUpgrade(socket, session.refuse);
            return;
          }
          if ('token' in session) {
            const refusal = session.token;
            rejected(refusal.code, `token-${refusal.reason}`);
            p.metrics.tokenRefusals.inc({ stage: 'connect', reason: refusal.reason });
            wss.handleUpgrade(req, socket, head, (ws) => closeRefused(ws, refusal.code, refusal.message));
            return;
          }
          if ('proxy' in session) {
            const { code, reason } = session.proxy;
            countProxyRefusal(p.metrics, 'ws', session.proxy);
            wss.handleUpgrade(req, socket, head, (ws) => closeRefused(ws, code, reason));
            return;
          }
          const who = session.identity;
          wss.handleUpgrade(req, socket, head, (ws) => {
            onSocket(p, ws, req, who, socket).catch(() => ws.terminate());
          });
        },
        () => {
          rejected(503, 'unavailable');
          refuseUpgrade(socket, 503);
        },
      );
    },
    close: () => wss.close(),
  };
}

/** Not a closure: one over the upgrade's scope would keep `req` and `head` alive as long as the socket. */
function destroySelf(this: Duplex): void {
  this.destroy();
}

async function onSocket(
  p: GatewayParts,
  ws: WebSocket,
  req: IncomingMessage,
  who: Identity,
  socket: Duplex,
): Promise<void> {
  ws.on('error', (err) => p.s.log({ level: 'warn', msg: 'socket error', gateway: p.s.id, err: err.message }));
  const params = new URL(req.url ?? '/', 'http://x').searchParams;
  const limit = new RateLimit(p.s.rateLimit);
  const queue: string[] = [];
  let inOrder: Promise<void> = Promise.resolve();
  let c: Connection | undefined;
  ws.on('message', (data, isBinary) => {
    if (!limit.take()) {
      p.metrics.rateLimited.inc();
      if (c) p.connections.end(c, CloseCode.RateLimited, 'rate limit');
      else ws.close(CloseCode.RateLimited, 'rate limit');
      return;
    }
    if (isBinary) return ws.close(CloseCode.ProtocolError, 'binary frames are not part of the protocol');
    const text = data.toString();
    if (!c) queue.push(text);
    // One frame at a time, in order: a `sub` still joining must not be overtaken by its `unsub` or `presence`.
    else {
      const open = c;
      inOrder = inOrder.then(() => handleFrame(p, open, text));
    }
  });
  ws.on('pong', () => c?.heard());
  ws.on('close', () => {
    if (c) p.connections.end(c, 1000, 'closed');
  });
  const forward = p.s.requests.forward;
  const forwarded = forward ? forwardedHeaders(req, forward) : undefined;
  c = (await openConnection(p, who, wsTransport(ws, socket), { params, forwarded })) ?? undefined;
  if (!c) return; // over a connection limit: already closed with 4429
  // The socket may have closed while the session's channels were being joined.
  if (ws.readyState !== ws.OPEN) return p.connections.end(c, 1000, 'closed');
  const opened = c;
  for (const text of queue.splice(0)) inOrder = inOrder.then(() => handleFrame(p, opened, text));
}
