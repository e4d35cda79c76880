import type { IncomingHttpHeaders } from 'node:http';
import type { SessionStartContext } from '../session/options.js';

/**
 * The start context of a request's session, with the client summary worked out only
 * if a session is created: reading the address (Express's req.ip runs its trust-proxy
 * logic) on every request was a visible share of a session read.
 */
export function startContext<R>(
  request: R,
  userAgent: (request: R) => string | undefined,
  ip: (request: R) => string | undefined,
): SessionStartContext {
  // The readers are each adapter's module-level functions of its request: no closures per request.
  return new LazyStartContext(request, userAgent, ip);
}

/**
 * A class rather than an object literal with a getter: V8 builds such a literal through a runtime
 * call on every evaluation, a visible share of a session read; the class's getter lives on its prototype.
 */
class LazyStartContext<R> implements SessionStartContext {
  #summary: string | undefined = undefined;
  readonly #request: R;
  readonly #userAgent: (request: R) => string | undefined;
  readonly #ip: (request: R) => string | undefined;

  constructor(request: R, userAgent: (request: R) => string | undefined, ip: (request: R) => string | undefined) {
    this.#request = request;
    this.#userAgent = userAgent;
    this.#ip = ip;
  }

  get client(): string {
    this.#summary ??= clientSummary(this.#userAgent(this.#request), this.#ip(this.#request));
    return this.#summary;
  }
}

/** "Firefox 128 · 203.0.113.7": what listSessions shows about a session's client. */
export function clientSummary(userAgent: string | undefined, ip: string | undefined): string {
  return `${(userAgent ?? 'unknown client').slice(0, 120)} · ${ip ?? 'unknown address'}`;
}

/** The User-Agent of a request whose headers are node:http's (node:http, Express, Fastify). */
export function userAgentOf(request: { headers: IncomingHttpHeaders }): string | undefined {
  return request.headers['user-agent'];
}
