import { type ServerResponse, STATUS_CODES } from 'node:http';
import {
  BusUnavailableError,
  busFailureMessage,
  LockTimeoutError,
  ShoalError,
  StoreUnavailableError,
} from '../core/errors.js';

/** A complete replacement response, independent of any framework's response type. */
export interface FailureResponse {
  status: 500 | 503;
  headers: Record<string, string>;
  body: string;
}

/**
 * What the client gets instead of the handler's response when the session
 * could not be read or saved: fail closed (never an anonymous or half-saved
 * answer), 503 + Retry-After when the store is down, 500 otherwise. Same body
 * as commitBeforeHeaders' so every adapter answers alike.
 */
export function sessionFailure(err: unknown): FailureResponse {
  const unavailable = err instanceof StoreUnavailableError;
  const body = JSON.stringify({
    error: err instanceof ShoalError ? err.code : 'ERR_SHOAL_SESSION_COMMIT',
    message: unavailable
      ? "The session store is unavailable; this request's changes may not have been saved. Retry shortly."
      : `Saving the session failed: ${(err as Error).message}`,
  });
  return {
    status: unavailable ? 503 : 500,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      ...(unavailable ? { 'retry-after': '1' } : {}),
    },
    body,
  };
}

/**
 * What a route whose session lock could not be had answers: 409 (the
 * resource is busy with a concurrent request) and Retry-After, so a client or
 * proxy may try again. The same in every adapter.
 */
export function lockFailure(err: LockTimeoutError): { status: 409; headers: Record<string, string>; body: string } {
  return {
    status: 409,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'retry-after': '1' },
    body: JSON.stringify({ error: err.code, message: err.message }),
  };
}

/**
 * What a route answers when a bus call in it (a publish, `realtime.to(…).send(…)`) could not
 * complete: 503 and Retry-After, as for a store outage, never a 500. The same in every adapter.
 */
export function busFailure(err: BusUnavailableError): FailureResponse {
  return {
    status: 503,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'retry-after': '1' },
    body: JSON.stringify({
      error: err.code,
      message: busFailureMessage(err.outcome),
      ...(err.outcome ? { outcome: err.outcome } : {}),
    }),
  };
}

/**
 * Headers of the handler's response that describe its body or its caching, or carry its cookies:
 * dropped when a failure answer replaces it (a 503 must not be cached, nor set what the failed
 * request would have). Everything else stays — CORS, Vary, a request id, security headers set
 * by middleware ahead of the session — so a browser can still read the failure.
 */
const REPLACED_WITH_THE_BODY = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'content-range',
  'content-disposition',
  'content-language',
  'content-location',
  'transfer-encoding',
  'etag',
  'last-modified',
  'expires',
  'cache-control',
  'age',
  'location',
  'set-cookie',
  'retry-after',
]);

/** Whether a header of the handler's response goes when a failure answer replaces the response. */
export function droppedOnFailure(name: string): boolean {
  return REPLACED_WITH_THE_BODY.has(name.toLowerCase());
}

/** Any of the answers above, or an adapter's own 500. */
export interface FailureAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Replaces a node:http response that has sent nothing yet with a failure answer: the handler's
 * headers about its body go (droppedOnFailure), the status text is the failure's own (an error page
 * may have set another), and `end` sends it: a held response passes the original it holds.
 */
export function writeFailure(
  res: ServerResponse,
  f: FailureAnswer,
  end: (this: ServerResponse, body: string) => unknown = res.end,
): void {
  for (const name of res.getHeaderNames()) if (droppedOnFailure(name)) res.removeHeader(name);
  res.statusCode = f.status;
  res.statusMessage = STATUS_CODES[f.status] ?? '';
  for (const [name, value] of Object.entries(f.headers)) res.setHeader(name, value);
  res.setHeader('Content-Length', Buffer.byteLength(f.body));
  end.call(res, f.body);
}

/**
 * The status a request is answered with once the adapter has replaced what a handler's error made of
 * it: 409 for a lock that timed out, 503 for a publish the bus did not take, else `status`.
 */
export function answeredStatus(err: unknown, status: number): number {
  return err instanceof LockTimeoutError ? 409 : err instanceof BusUnavailableError ? 503 : status;
}
