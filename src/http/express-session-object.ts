import type { IncomingMessage } from 'node:http';
import type { SessionCookie } from './express-session-cookie.js';

type Callback = (err?: unknown) => void;

/** What a request's session object asks of the request it belongs to. */
export interface SessionControl {
  save(session: DropInSession): Promise<void>;
  reload(): Promise<void>;
  destroy(): Promise<void>;
  regenerate(): Promise<void>;
  report(err: unknown, what: string): void;
}

/** Gives a session object the id its session was stored under after all (see RequestSession). */
export let renameSession: (session: DropInSession, id: string) => void;

/**
 * `req.session`: a plain object whose own properties are the session's data, as with
 * express-session (`req.session.views++`, `delete req.session.cart`, `Object.keys(req.session)`).
 * `id`, `req` and the methods live on the prototype, over private fields, so none of them is ever
 * taken for data (and making one costs no property definitions).
 */
export class DropInSession {
  cookie: SessionCookie;
  [property: string]: unknown;
  readonly #control: SessionControl;
  readonly #req: IncomingMessage;
  #id: string;

  static {
    renameSession = (session, id) => {
      session.#id = id;
    };
  }

  constructor(control: SessionControl, req: IncomingMessage, id: string, cookie: SessionCookie) {
    this.#control = control;
    this.#req = req;
    this.#id = id;
    this.cookie = cookie;
  }

  get id(): string {
    return this.#id;
  }

  get req(): IncomingMessage {
    return this.#req;
  }

  /** Resets the cookie's expiry to a full maxAge (the cookie is sent again if rolling or modified). */
  touch(): this {
    return this.resetMaxAge();
  }

  resetMaxAge(): this {
    this.cookie.maxAge = this.cookie.originalMaxAge;
    return this;
  }

  /** Commits what changed now (properties merged field by field), then calls back. */
  save(callback?: Callback): this {
    this.#run(this.#control.save(this), callback, 'save');
    return this;
  }

  /** Reads the session from the store again; `req.session` is then a new object for the same session. */
  reload(callback: Callback): this {
    this.#run(this.#control.reload(), callback, 'reload');
    return this;
  }

  /** Ends the session on every node; `req.session` is removed. */
  destroy(callback?: Callback): this {
    this.#run(this.#control.destroy(), callback, 'destroy');
    return this;
  }

  /** Replaces the session by a new, empty one under a new id; the old id is refused from now on. */
  regenerate(callback: Callback): this {
    this.#run(this.#control.regenerate(), callback, 'regenerate');
    return this;
  }

  #run(work: Promise<void>, callback: Callback | undefined, what: string): void {
    work.then(
      () => callback?.(),
      (err: unknown) => (callback ? callback(err) : this.#control.report(err, what)),
    );
  }
}
