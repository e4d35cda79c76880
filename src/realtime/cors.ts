import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '../core/http.js';
import { checkOrigin } from './origin.js';

/**
 * CORS for the endpoints a browser page reads with fetch or EventSource: the SSE stream (GET) and
 * its requests (POST). A page on another origin that the gateway allows (`origins`, SHOAL_ORIGINS)
 * may read the answers, with credentials, as the SDK sends them; for any other origin no CORS
 * header is set and the browser keeps the answer from the page. WebSocket needs none of this: the
 * handshake's Origin check is the whole defence there.
 */
export function allowOrigin(req: IncomingMessage, res: ServerResponse, origins: readonly string[]): boolean {
  const origin = req.headers.origin;
  res.setHeader('vary', 'origin');
  if (origin === undefined || !checkOrigin(origin, origins, true)) return false;
  // With credentials the browser takes only the exact origin, never "*".
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('access-control-allow-credentials', 'true');
  return true;
}

/** Answers a preflight (OPTIONS) for the SSE endpoints: 204 for an allowed origin, 403 otherwise. */
export function answerPreflight(req: IncomingMessage, res: ServerResponse, origins: readonly string[]): void {
  if (!allowOrigin(req, res, origins)) {
    sendJson(res, 403, { error: `origin ${req.headers.origin ?? '(none)'} is not allowed: add it to SHOAL_ORIGINS` });
    return;
  }
  res.writeHead(204, {
    'access-control-allow-methods': 'GET, POST',
    'access-control-allow-headers': 'content-type, last-event-id',
    'access-control-max-age': '600',
  });
  res.end();
}
