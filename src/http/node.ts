import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { StoreUnavailableError } from '../core/errors.js';
import type { SessionManager } from '../session/manager.js';
import type { SessionSchema } from '../session/options.js';
import type { Session } from '../session/session.js';
import { clientSummary, commitBeforeHeaders } from './commit-before-headers.js';
import { sessionFailure } from './failure.js';

export interface NodeSessionOptions {
  /** Called with handler and commit failures (log them); the client gets a JSON 500/503 either way. */
  onError?: (err: unknown) => void;
}

export type SessionHandler<T extends SessionSchema> = (
  req: IncomingMessage,
  res: ServerResponse,
  session: Session<T>,
) => unknown;

export interface NodeSessions<T extends SessionSchema> {
  /** The request's session; it commits before the response headers leave. */
  attach(req: IncomingMessage, res: ServerResponse): Session<T>;
  /**
   * A request listener that attaches the session and answers 503 (store down)
   * or 500 when the handler throws, so no request hangs on a failure.
   */
  handle(handler: SessionHandler<T>): RequestListener;
}

/**
 * Sessions for plain node:http:
 * `http.createServer(nodeSessions(manager).handle(async (req, res, session) => { … }))`.
 */
export function nodeSessions<T extends SessionSchema>(
  manager: SessionManager<T>,
  options: NodeSessionOptions = {},
): NodeSessions<T> {
  const onError = options.onError ?? (() => {});

  const attach = (req: IncomingMessage, res: ServerResponse): Session<T> => {
    const s = manager.open(req.headers.cookie, {
      client: clientSummary(req.headers['user-agent'], req.socket.remoteAddress),
    });
    commitBeforeHeaders(
      res,
      async () => {
        await s.commit();
        return manager.setCookieHeader(s);
      },
      onError,
    );
    return s;
  };

  const handle =
    (handler: SessionHandler<T>): RequestListener =>
    (req, res) => {
      const s = attach(req, res);
      const started = watchStart(res);
      Promise.resolve()
        .then(() => handler(req, res, s))
        .catch((err: unknown) => {
          onError(err);
          // Half a response cannot be taken back: cut it rather than append an error to it.
          if (started()) return res.destroy();
          const f =
            err instanceof StoreUnavailableError
              ? sessionFailure(err)
              : { status: 500, headers: { 'content-type': 'application/json; charset=utf-8' }, body: INTERNAL };
          for (const name of res.getHeaderNames()) res.removeHeader(name);
          res.statusCode = f.status;
          for (const [name, value] of Object.entries(f.headers)) res.setHeader(name, value);
          res.end(f.body);
        });
    };

  return { attach, handle };
}

const INTERNAL = JSON.stringify({ error: 'ERR_INTERNAL', message: 'Internal Server Error' });

/** Whether the handler began its response (headersSent stays false while commitBeforeHeaders holds it). */
function watchStart(res: ServerResponse): () => boolean {
  let started = false;
  for (const method of ['writeHead', 'write', 'end'] as const) {
    const held = res[method] as (...args: unknown[]) => unknown;
    (res as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      started = true;
      return held.apply(res, args);
    };
  }
  return () => started || res.headersSent;
}
