import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { BusUnavailableError, ConfigError, LockTimeoutError, StoreUnavailableError } from '../core/errors.js';
import type { RequestSession } from '../session/data.js';
import type { LockContext, LockOptions } from '../session/lock.js';
import type { SessionManager } from '../session/manager.js';
import type { SessionSchema } from '../session/options.js';
import type { Session } from '../session/session.js';
import {
  answeredStatus,
  busFailure,
  droppedOnFailure,
  type FailureAnswer,
  lockFailure,
  sessionFailure,
} from './failure.js';
import { checkManager } from './misuse.js';
import { commitScopesNow, openScopes, type Scopes } from './scopes.js';
import { userAgentOf } from './start-context.js';

/** A route's lock: `config: { sessionLock: 'checkout' }` or `{ name: 'checkout', wait: '2s' }`. */
export type SessionLockConfig = string | ({ name: string } & LockOptions);

declare module 'fastify' {
  interface FastifyRequest {
    /** The shoal session of this request, typed by the app's SessionData (or with sessionOf(request, sessions)). */
    session: RequestSession;
    /** The client scope, when session(sessions, { client }) was given one (typed with clientOf(request, clients)). */
    client?: Session;
    /** Set while a route with `config.sessionLock` holds its lock. */
    sessionLock?: LockContext & { name: string };
  }
  interface FastifyContextConfig {
    /**
     * Requests of one session to routes locked with the same name run one at a time
     * across the cluster; held from preHandler until the response is done. 409 when
     * the lock cannot be had within `wait`.
     */
    sessionLock?: SessionLockConfig;
  }
}

export interface FastifySessionOptions<C extends SessionSchema> {
  /** A client-scope manager (defineClientScope): `request.client` holds long-lived per-browser data. */
  client?: SessionManager<C>;
}

/**
 * Fastify plugin: `await app.register(session(manager))`, then `request.session`
 * in every route of the app. The session commits in onSend, which runs before
 * the headers are written, so the client never holds a response whose writes
 * the store does not have yet.
 */
export function session<T extends SessionSchema, C extends SessionSchema = SessionSchema>(
  manager: SessionManager<T>,
  options: FastifySessionOptions<C> = {},
): FastifyPluginAsync {
  checkManager(manager, 'await app.register(session(sessions))');
  if (options.client !== undefined) checkManager(options.client, 'session(sessions, { client: clients })');
  // Requests whose handler hit a store outage.
  const outage = new WeakMap<FastifyRequest, StoreUnavailableError>();
  const lockTimedOut = new WeakMap<FastifyRequest, LockTimeoutError>();
  const busDown = new WeakMap<FastifyRequest, BusUnavailableError>();
  /**
   * Each request's scopes until its commit. The entry is deleted at the commit (onSend runs again
   * for the error handler's reply when something fails after it: that one finds none). Deleted, not
   * left to the key's death: the scopes reach the request back (their start context), and an entry
   * whose value reaches its key outlives the young-generation collections, request and all, until
   * the next full one (~1.5 KB a request copied and promoted, by --trace-gc-nvp).
   */
  const opened = new WeakMap<FastifyRequest, Scopes<T, C>>();

  const plugin: FastifyPluginAsync = async (app) => {
    app.decorateRequest('session', null as unknown as Session);
    app.decorateRequest('client', undefined);
    app.decorateRequest('sessionLock', undefined);

    app.addHook('onRequest', async (request) => {
      const scopes = openScopes(manager, options.client, request.headers.cookie, request, userAgentOf, ipOf);
      request.session = scopes.session as unknown as RequestSession;
      if (scopes.client) request.client = scopes.client as unknown as Session;
      opened.set(request, scopes);
    });

    app.addHook('preHandler', async (request, reply) => {
      const config = request.routeOptions.config.sessionLock;
      if (!config) return;
      const { name, ...lockOptions } = typeof config === 'string' ? { name: config } : config;
      let held: Awaited<ReturnType<Session['acquireLock']>>;
      try {
        held = await request.session.acquireLock(name, lockOptions);
      } catch (err) {
        if (!(err instanceof LockTimeoutError)) throw err;
        const f = lockFailure(err);
        return reply.code(f.status).headers(f.headers).send(f.body);
      }
      request.sessionLock = { name, fencingToken: held.fencingToken };
      // 'close' follows the last byte (so the commit) or an abort: either way the lock goes back.
      if (reply.raw.closed) void held.release();
      else reply.raw.once('close', () => void held.release());
    });

    app.addHook('onError', async (request, _reply, error) => {
      if (error instanceof StoreUnavailableError) outage.set(request, error);
      if (error instanceof LockTimeoutError) lockTimedOut.set(request, error);
      if (error instanceof BusUnavailableError) busDown.set(request, error);
    });

    app.addHook('onSend', async (request, reply, payload) => {
      const scopes = opened.get(request);
      // None: committed already, or an earlier onRequest hook failed.
      if (!scopes) return payload;
      opened.delete(request);
      // Fail closed: after an outage in the handler nothing is saved and the client learns why.
      const failed = outage.get(request);
      if (failed) return replace(reply, payload, sessionFailure(failed));
      // A handler's session.lock() that timed out answers 409, like a locked route does.
      // A publish that found the bus unavailable answers 503 + Retry-After, not the error handler's 500.
      const busy = lockTimedOut.get(request);
      const bus = busDown.get(request);
      let cookies: string[];
      try {
        const pending = commitScopesNow(manager, options.client, scopes, answeredStatus(busy ?? bus, reply.statusCode));
        cookies = Array.isArray(pending) ? pending : await pending;
      } catch (err) {
        return replace(reply, payload, sessionFailure(err));
      }
      const body = busy
        ? replace(reply, payload, lockFailure(busy))
        : bus
          ? replace(reply, payload, busFailure(bus))
          : payload;
      if (cookies.length) {
        reply.header('set-cookie', cookies);
        // A response that sets or clears the session cookie must never be cached by a proxy.
        reply.header('cache-control', 'no-store');
      }
      return body;
    });
  };

  // What fastify-plugin does: no encapsulation, so request.session exists app-wide.
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'shoal-session',
  });
  return plugin;
}

function replace(reply: FastifyReply, payload: unknown, f: FailureAnswer): string {
  const body = payload as { destroy?: () => void } | null;
  if (body && typeof body.destroy === 'function') body.destroy(); // a stream the client will never read
  for (const name of Object.keys(reply.getHeaders())) if (droppedOnFailure(name)) reply.removeHeader(name);
  reply.code(f.status).headers(f.headers);
  return f.body;
}

/** The typed session of a request: `sessionOf(request, sessions)` → Session<YourSchema>. */
export function sessionOf<T extends SessionSchema>(
  request: { session: RequestSession },
  _manager: SessionManager<T>,
): Session<T> {
  return request.session as unknown as Session<T>;
}

/** The typed client scope of a request: `clientOf(request, clients)` → Session<YourClientSchema>. */
export function clientOf<C extends SessionSchema>(
  request: { client?: Session },
  _manager: SessionManager<C>,
): Session<C> {
  if (!request.client) {
    throw new ConfigError(
      'request.client is not set: register the plugin with the client-scope manager, session(sessions, { client })',
    );
  }
  return request.client as unknown as Session<C>;
}

function ipOf(request: FastifyRequest): string | undefined {
  return request.ip;
}
