import type { ServerResponse } from 'node:http';
import type { SessionStartContext } from '../session/options.js';
import { sessionFailure } from './failure.js';

type Op = { method: 'writeHead' | 'write' | 'end'; args: unknown[] };

/**
 * Holds a node:http response's headers until `finish` (the session commit)
 * has completed, then replays what the handler did. This is what makes a write
 * visible to the next request on any node: the client cannot have the response
 * before the store has the data.
 *
 * If the commit fails and nothing was sent yet, the handler's response is
 * replaced by a 503 (store unavailable) or 500 with a JSON body saying why.
 */
export function commitBeforeHeaders(
  res: ServerResponse,
  finish: () => Promise<string | string[] | undefined>,
  onError: (err: unknown) => void = () => {},
): void {
  const original = { writeHead: res.writeHead, write: res.write, end: res.end };
  const queue: Op[] = [];
  let started = false;

  const restore = () => {
    res.writeHead = original.writeHead;
    res.write = original.write;
    res.end = original.end;
  };

  const replay = (cookies: string | string[] | undefined) => {
    restore();
    if (cookies?.length && !res.headersSent) {
      res.appendHeader('Set-Cookie', cookies);
      // A response that sets or clears the session cookie must never be cached by a proxy.
      res.setHeader('Cache-Control', 'no-store');
    }
    for (const op of queue) (original[op.method] as (...a: unknown[]) => unknown).apply(res, op.args);
  };

  const fail = (err: unknown) => {
    restore();
    onError(err);
    if (res.headersSent) return res.destroy(err as Error);
    const failure = sessionFailure(err);
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    res.statusCode = failure.status;
    for (const [name, value] of Object.entries(failure.headers)) res.setHeader(name, value);
    res.setHeader('Content-Length', Buffer.byteLength(failure.body));
    (original.end as (body: string) => void).call(res, failure.body);
  };

  const intercept =
    (method: Op['method']) =>
    (...args: unknown[]) => {
      queue.push({ method, args });
      if (!started) {
        started = true;
        finish().then(replay, fail);
      }
      return method === 'write' ? true : res;
    };

  res.writeHead = intercept('writeHead') as ServerResponse['writeHead'];
  res.write = intercept('write') as ServerResponse['write'];
  res.end = intercept('end') as ServerResponse['end'];
}

/**
 * The start context of a request's session, with the client summary worked out only
 * if a session is created: reading the address (Express's req.ip runs its trust-proxy
 * logic) on every request was a visible share of a session read.
 */
export function startContext(userAgent: () => string | undefined, ip: () => string | undefined): SessionStartContext {
  let summary: string | undefined;
  return {
    get client() {
      summary ??= clientSummary(userAgent(), ip());
      return summary;
    },
  };
}

/** "Firefox 128 · 203.0.113.7": what listSessions shows about a session's client. */
export function clientSummary(userAgent: string | undefined, ip: string | undefined): string {
  return `${(userAgent ?? 'unknown client').slice(0, 120)} · ${ip ?? 'unknown address'}`;
}
