import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { StoreUnavailableError } from '../core/errors.js';
import type { SessionManager } from '../session/manager.js';
import type { SessionSchema } from '../session/options.js';
import type { Session } from '../session/session.js';
import { clientSummary } from './commit-before-headers.js';
import { type FailureResponse, sessionFailure } from './failure.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The shoal session of this request (typed per app with sessionOf(request, sessions)). */
    session: Session;
  }
}

/**
 * Fastify plugin: `await app.register(session(manager))`, then `request.session`
 * in every route of the app. The session commits in onSend, which runs before
 * the headers are written, so the client never holds a response whose writes
 * the store does not have yet.
 */
export function session<T extends SessionSchema>(manager: SessionManager<T>): FastifyPluginAsync {
  // Requests whose handler hit a store outage, and requests already committed (onSend
  // runs again for the error handler's reply when something fails after it).
  const outage = new WeakMap<FastifyRequest, StoreUnavailableError>();
  const settled = new WeakSet<FastifyRequest>();

  const plugin: FastifyPluginAsync = async (app) => {
    app.decorateRequest('session', null as unknown as Session);

    app.addHook('onRequest', async (request) => {
      const s = manager.open(request.headers.cookie, {
        client: clientSummary(request.headers['user-agent'], request.ip),
      });
      request.session = s as unknown as Session;
    });

    app.addHook('onError', async (request, _reply, error) => {
      if (error instanceof StoreUnavailableError) outage.set(request, error);
    });

    app.addHook('onSend', async (request, reply, payload) => {
      const s = request.session as unknown as Session<T> | null;
      if (!s || settled.has(request)) return payload; // null: an earlier onRequest hook failed
      settled.add(request);
      // Fail closed: after an outage in the handler nothing is saved and the client learns why.
      const failed = outage.get(request);
      if (failed) return replace(reply, payload, sessionFailure(failed));
      try {
        await s.commit();
      } catch (err) {
        return replace(reply, payload, sessionFailure(err));
      }
      const cookie = manager.setCookieHeader(s);
      if (cookie) {
        reply.header('set-cookie', cookie);
        // A response that sets or clears the session cookie must never be cached by a proxy.
        reply.header('cache-control', 'no-store');
      }
      return payload;
    });
  };

  // What fastify-plugin does: no encapsulation, so request.session exists app-wide.
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'shoal-session',
  });
  return plugin;
}

function replace(reply: FastifyReply, payload: unknown, f: FailureResponse): string {
  const body = payload as { destroy?: () => void } | null;
  if (body && typeof body.destroy === 'function') body.destroy(); // a stream the client will never read
  for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name);
  reply.code(f.status).headers(f.headers);
  return f.body;
}

/** The typed session of a request: `sessionOf(request, sessions)` → Session<YourSchema>. */
export function sessionOf<T extends SessionSchema>(
  request: { session: Session },
  _manager: SessionManager<T>,
): Session<T> {
  return request.session as unknown as Session<T>;
}
