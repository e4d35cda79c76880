import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '../core/http.js';
import { parseClientMessage } from '../protocol/messages.js';
import { isRequestType, type ReplyMessage, type RequestMessage } from '../protocol/requests.js';
import { forwardedHeaders } from './app-call.js';
import { answerRequest, type Caller, RequestBounds } from './client-requests.js';
import { authenticate, countProxyRefusal, refusalText } from './handshake.js';
import type { GatewayParts } from './parts.js';

/** Bounds per session (or user) for POST /request, forgotten wholesale past this many callers. */
const MAX_TRACKED = 10_000;
const boundsByKey = new WeakMap<GatewayParts, Map<string, RequestBounds>>();
let seq = 0;

/**
 * POST /request: one `rpc`, `pub` or `history` frame as the body, its `reply` as the answer —
 * the way back for an SSE client, which cannot send frames. Authenticated like a handshake
 * (cookie with an allowed Origin, `?token=`, or the connect proxy), bounded like a socket's
 * requests, per session or user.
 */
export async function handleRequestPost(p: GatewayParts, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const verdict = await authenticate(req, 'sse-request', {
    sessions: p.s.sessions,
    origins: p.s.origins,
    draining: false,
    tokens: p.s.tokens,
    connectProxy: p.s.connectProxy,
  });
  if (verdict === 'no-session') return sendJson(res, 401, { error: 'no session: sign in, then call again' });
  if ('refuse' in verdict) return sendJson(res, verdict.refuse, { error: refusalText(verdict.reason) });
  if ('token' in verdict) {
    p.metrics.tokenRefusals.inc({ stage: 'connect', reason: verdict.token.reason });
    return sendJson(res, 401, { error: verdict.token.message, code: verdict.token.code });
  }
  if ('proxy' in verdict) {
    countProxyRefusal(p.metrics, 'sse', verdict.proxy);
    return sendJson(res, verdict.proxy.failed ? 503 : 401, { error: verdict.proxy.reason, code: verdict.proxy.code });
  }
  const text = await readBody(req, p.s.maxMessageBytes);
  if (text === null) return sendJson(res, 413, { error: `body over ${p.s.maxMessageBytes} bytes` });
  const m = parseClientMessage(text);
  if ('error' in m || !isRequestType(m.type)) {
    p.metrics.protocolErrors.inc();
    const message = 'error' in m ? m.error : 'the body must be one rpc, pub, history or clients frame';
    return sendJson(res, 400, { error: message });
  }
  const who = verdict.identity;
  const key = who.sessionId ?? `user:${who.userId ?? ''}`;
  const bounds = boundsFor(p, key);
  const reply = await new Promise<ReplyMessage>((resolve) => {
    const caller: Caller = {
      id: `request-${++seq}`,
      identity: who,
      forwarded: p.s.requests.forward ? forwardedHeaders(req, p.s.requests.forward) : {},
      joined: () => false,
      reply: resolve,
      bounds,
    };
    void answerRequest(p, caller, m as RequestMessage, Buffer.byteLength(text));
  });
  sendJson(res, 200, reply);
}

function boundsFor(p: GatewayParts, key: string): RequestBounds {
  let map = boundsByKey.get(p);
  if (!map) {
    map = new Map();
    boundsByKey.set(p, map);
  }
  let b = map.get(key);
  if (!b) {
    if (map.size >= MAX_TRACKED) map.clear();
    b = new RequestBounds(p.s.requests.limits.perSecond);
    map.set(key, b);
  }
  return b;
}

async function readBody(req: IncomingMessage, max: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
