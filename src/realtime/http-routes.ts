import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerHealth, sendJson } from '../core/http.js';
import { CloseCode } from '../protocol/messages.js';
import { forwardedHeaders } from './app-call.js';
import { authenticate, countProxyRefusal, NO_SESSION_REASON, statusText } from './handshake.js';
import { CONTROLS } from './http-control.js';
import { handlePublish } from './http-publish.js';
import { QUERIES } from './http-query.js';
import { handleRequestPost } from './http-requests.js';
import { sendOpenApi } from './openapi.js';
import type { GatewayParts } from './parts.js';
import { openConnection } from './resume.js';
import { sseTransport } from './transports.js';

/** The gateway's plain HTTP side: probes, metrics, the server API (POST /publish, …, GET /openapi.json) and the SSE stream. */
export function createHttpRoutes(p: GatewayParts): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const probes = {
    id: p.s.id,
    ready: () => p.ready(),
    readyDetails: () => ({ connections: p.connections.size }),
    metrics: p.metrics.registry ? p.metrics : null,
  };
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    try {
      if (await answerHealth(url.pathname, res, probes)) return;
      // Awaited here, so a failure is answered below rather than left unhandled.
      const path = url.pathname;
      if (path === '/publish' && req.method === 'POST') await handlePublish(req, res, p.s.bus, p.s.publishKey);
      else if (CONTROLS.has(path) && req.method === 'POST')
        await CONTROLS.handle(path, req, res, p.s.bus, p.s.publishKey);
      else if (QUERIES.has(path) && req.method === 'POST')
        await QUERIES.handle(path, req, res, p.s.bus, p.s.publishKey);
      else if (path === '/openapi.json' && req.method === 'GET') await sendOpenApi(res);
      else if (url.pathname === '/sse' && req.method === 'GET') await openSse(p, req, res, url.searchParams);
      else if (url.pathname === '/request' && req.method === 'POST') await handleRequestPost(p, req, res);
      else sendJson(res, 404, { error: 'not found' });
    } catch (err) {
      p.s.log({ level: 'error', msg: 'gateway request failed', gateway: p.s.id, err: String(err) });
      if (!res.headersSent)
        sendJson(res, 503, { error: 'unavailable', message: 'the session store or bus failed; retry' });
      else res.end();
    }
  };
}

async function openSse(p: GatewayParts, req: IncomingMessage, res: ServerResponse, params: URLSearchParams) {
  const rejected = (status: number, reason: string) =>
    p.metrics.handshakeRejected.inc({ transport: 'sse', status: String(status), reason });
  const session = await authenticate(req, false, {
    sessions: p.s.sessions,
    origins: p.s.origins,
    draining: p.state.draining,
    tokens: p.s.tokens,
    connectProxy: p.s.connectProxy,
  }).catch((err: unknown) => {
    rejected(503, 'unavailable');
    throw err;
  });
  if (session === 'no-session') {
    rejected(CloseCode.Unauthorized, 'no-session');
    // A 200 stream that says why and ends: an error status would make EventSource report a bare
    // failure, and the SDK reads this close event as it does over WebSocket (no reconnect).
    sseTransport(res, p.s.heartbeatMs).close(CloseCode.Unauthorized, NO_SESSION_REASON);
    return;
  }
  if ('refuse' in session) {
    rejected(session.refuse, session.reason);
    return sendJson(res, session.refuse, { error: statusText(session.refuse) });
  }
  if ('token' in session) {
    const { code, reason, message } = session.token;
    rejected(code, `token-${reason}`);
    p.metrics.tokenRefusals.inc({ stage: 'connect', reason });
    sseTransport(res, p.s.heartbeatMs).close(code, message);
    return;
  }
  if ('proxy' in session) {
    countProxyRefusal(p.metrics, 'sse', session.proxy);
    sseTransport(res, p.s.heartbeatMs).close(session.proxy.code, session.proxy.reason);
    return;
  }
  const last = req.headers['last-event-id'];
  const transport = sseTransport(res, p.s.heartbeatMs);
  const forward = p.s.requests.forward;
  const c = await openConnection(p, session.identity, transport, {
    params,
    forwarded: forward ? forwardedHeaders(req, forward) : undefined,
    lastEventId: typeof last === 'string' ? last : undefined,
  });
  if (!c) return; // over a connection limit: the stream already ended with 4429
  if (res.destroyed) p.connections.end(c, 1000, 'closed');
  else res.on('close', () => p.connections.end(c, 1000, 'closed'));
}
