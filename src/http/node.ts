import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { BusUnavailableError, LockTimeoutError, StoreUnavailableError } from '../core/errors.js';
import type { SessionManager } from '../session/manager.js';
import type { SessionSchema } from '../session/options.js';
import type { Session } from '../session/session.js';
import { commitBeforeHeaders, type HeldCommit, type ResponseHold } from './commit-before-headers.js';
import { busFailure, lockFailure, sessionFailure, writeFailure } from './failure.js';
import { checkManager } from './misuse.js';
import { openScopes, type Scopes, scopesCommit } from './scopes.js';
import { userAgentOf } from './start-context.js';

export interface NodeSessionOptions<C extends SessionSchema = never> {
  /** Called with handler and commit failures (log them); the client gets a JSON 500/503 either way. */
  onError?: (err: unknown) => void;
  /** A client-scope manager (defineClientScope): handlers get its Session as their fourth argument. */
  client?: SessionManager<C>;
}

/** The handler's fourth argument: the client scope when one was configured. */
export type ClientArg<C extends SessionSchema> = [C] extends [never] ? undefined : Session<C>;

export type SessionHandler<T extends SessionSchema, C extends SessionSchema = never> = (
  req: IncomingMessage,
  res: ServerResponse,
  session: Session<T>,
  client: ClientArg<C>,
) => unknown;

export interface NodeSessions<T extends SessionSchema, C extends SessionSchema = never> {
  /** The request's session; it (and the client scope) commit before the response headers leave. */
  attach(req: IncomingMessage, res: ServerResponse): Session<T>;
  /** The request's client scope, once attach() ran (undefined without a client manager). */
  clientOf(req: IncomingMessage): ClientArg<C>;
  /**
   * A request listener that attaches the session and answers 503 (store down),
   * 409 (a session.lock() timed out) or 500 when the handler throws, so no
   * request hangs on a failure.
   */
  handle(handler: SessionHandler<T, C>): RequestListener;
}

/**
 * Sessions for plain node:http:
 * `http.createServer(nodeSessions(manager).handle(async (req, res, session) => { … }))`.
 */
export function nodeSessions<T extends SessionSchema, C extends SessionSchema = never>(
  manager: SessionManager<T>,
  options: NodeSessionOptions<C> = {},
): NodeSessions<T, C> {
  checkManager(manager, 'nodeSessions(sessions)');
  if (options.client !== undefined) checkManager(options.client, 'nodeSessions(sessions, { client: clients })');
  const onError = options.onError ?? (() => {});
  // The scopes' commit, telling onError when it failed: made once, not per request.
  const commit: HeldCommit<Scopes<SessionSchema, SessionSchema>> = { ...scopesCommit, failed: onError };
  const clients = new WeakMap<IncomingMessage, Session<C>>();

  /** Opens the request's scopes and holds its response until they are committed. */
  const open = (req: IncomingMessage, res: ServerResponse) => {
    const scopes = openScopes(manager, options.client, req.headers.cookie, req, userAgentOf, addressOf);
    return { scopes, hold: commitBeforeHeaders(res, commit, scopes) };
  };
  const attach = (req: IncomingMessage, res: ServerResponse): Session<T> => {
    const { scopes } = open(req, res);
    // Kept for clientOf(req); handle() hands the client scope to its handler directly.
    if (scopes.client) clients.set(req, scopes.client);
    return scopes.session;
  };
  const clientOf = (req: IncomingMessage) => clients.get(req) as ClientArg<C>;

  const handle =
    (handler: SessionHandler<T, C>): RequestListener =>
    (req, res) => {
      const { scopes, hold } = open(req, res);
      let result: unknown;
      try {
        result = handler(req, res, scopes.session, scopes.client as ClientArg<C>);
      } catch (err) {
        result = Promise.reject(err);
      }
      // A handler that returned no promise (or thenable) has nothing more to report.
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
        Promise.resolve(result).catch((err: unknown) => fail(res, hold, err));
      }
    };

  /** Answers a handler's failure: 503 (store or bus down), 409 (lock timed out) or 500. */
  const fail = (res: ServerResponse, hold: ResponseHold, err: unknown): void => {
    onError(err);
    // Half a response cannot be taken back: cut it rather than append an error to it.
    if (hold.started || res.headersSent) {
      res.destroy();
      return;
    }
    const f =
      err instanceof StoreUnavailableError
        ? sessionFailure(err)
        : err instanceof LockTimeoutError
          ? lockFailure(err)
          : err instanceof BusUnavailableError
            ? busFailure(err)
            : { status: 500, headers: { 'content-type': 'application/json; charset=utf-8' }, body: INTERNAL };
    writeFailure(res, f);
  };

  return { attach, clientOf, handle };
}

const INTERNAL = JSON.stringify({ error: 'ERR_INTERNAL', message: 'Internal Server Error' });

function addressOf(req: IncomingMessage): string | undefined {
  return req.socket.remoteAddress;
}
