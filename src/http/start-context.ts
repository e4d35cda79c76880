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
): RequestStart<R> {
  // The readers are each adapter's module-level functions of its request: no closures per request.
  return new RequestStart(request, userAgent, ip);
}

/** A start context's hold on its request, for an adapter that keeps the session off the request. */
export interface HeldRequest<R> {
  letGo(): void;
  hold(request: R): void;
}

/**
 * A class rather than an object literal with a getter: V8 builds such a literal through a runtime
 * call on every evaluation, a visible share of a session read; the class's getter lives on its prototype.
 */
export class RequestStart<R> implements SessionStartContext, HeldRequest<R> {
  #summary: string | undefined = undefined;
  /** null once let go of (see letGo). */
  #request: R | null;
  readonly #userAgent: (request: R) => string | undefined;
  readonly #ip: (request: R) => string | undefined;

  constructor(request: R, userAgent: (request: R) => string | undefined, ip: (request: R) => string | undefined) {
    this.#request = request;
    this.#userAgent = userAgent;
    this.#ip = ip;
  }

  get client(): string {
    if (this.#summary !== undefined) return this.#summary;
    const request = this.#request;
    if (request === null) return clientSummary(undefined, undefined);
    this.#summary = clientSummary(this.#userAgent(request), this.#ip(request));
    return this.#summary;
  }

  /**
   * Stops holding the request. An adapter that keeps a request's session in a WeakMap keyed by the
   * request lets go once the commit is over: an entry whose value reaches its key keeps the whole
   * request alive through the young-generation collections. A session started after that reads
   * the request again through hold(), or gets the summary of an unknown client.
   */
  letGo(): void {
    this.#request = null;
  }

  /** Holds the request again (it was reached through it after letGo). */
  hold(request: R): void {
    this.#request = request;
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
