import type { IncomingMessage, ServerResponse } from 'node:http';
import { BusUnavailableError, busFailureMessage, StoreUnavailableError } from '../core/errors.js';
import { answerHealth, sendJson } from '../core/http.js';
import { CloseCode } from '../protocol/messages.js';
import { forwardedHeaders } from './app-call.js';
import { allowOrigin, answerPreflight } from './cors.js';
import { authenticate, countProxyRefusal, NO_SESSION_REASON, refusalText } from './handshake.js';
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
      else if (BROWSER_PATHS.has(path)) await browserRoute(p, path, req, res, url.searchParams);
      else sendJson(res, 404, { error: 'not found' });
    } catch (err) {
      p.s.log({ level: 'error', msg: 'gateway request failed', gateway: p.s.id, err: String(err) });
      // Retryable, as a web node's answer to a store or bus outage is: a publish that could not be
      // stored in time is a 503 the caller may send again after Retry-After; its outcome says whether
      // that may deliver it twice.
      const outcome = err instanceof BusUnavailableError ? err.outcome : undefined;
      if (!res.headersSent)
        sendJson(
          res,
          503,
          {
            error: 'unavailable',
            message:
              err instanceof BusUnavailableError
                ? busFailureMessage(outcome)
                : err instanceof StoreUnavailableError
                  ? 'The session store is unavailable. Retry shortly.'
                  : 'The gateway could not complete the request. Retry shortly.',
            ...(outcome ? { outcome } : {}),
          },
          { 'retry-after': '1' },
        );
      else res.end();
    }
  };
}

/**
 * What a page reads over SSE: GET /sse is the stream, POST /sse a request frame (rpc, pub, history)
 * answered in the response. Requests share the stream's path so that whatever routes /sse to the
 * gateways (nginx, an ingress, the dev balancer) routes them too; POST /request is the older name.
 */
const BROWSER_PATHS = new Set(['/sse', '/request']);

async function browserRoute(
  p: GatewayParts,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
  params: URLSearchParams,
): Promise<void> {
  if (req.method === 'OPTIONS') return answerPreflight(req, res, p.s.origins);
  allowOrigin(req, res, p.s.origins);
  if (req.method === 'POST') return handleRequestPost(p, req, res);
  if (req.method === 'GET' && path === '/sse') return openSse(p, req, res, params);
  sendJson(res, 405, { error: `${req.method} ${path} is not served: GET /sse opens the stream, POST sends a request` });
}

async function openSse(p: GatewayParts, req: IncomingMessage, res: ServerResponse, params: URLSearchParams) {
  const rejected = (status: number, reason: string) =>
    p.metrics.handshakeRejected.inc({ transport: 'sse', status: String(status), reason });
  const session = await authenticate(req, 'sse-stream', {
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
    return sendJson(res, session.refuse, { error: refusalText(session.reason) });
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
