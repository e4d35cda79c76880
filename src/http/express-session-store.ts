import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { ConfigError, MissingDependencyError } from '../core/errors.js';
import type { SessionStore, StoredSession } from '../stores/contract.js';
import { createStore } from '../stores/index.js';

type Callback<T = void> = (err: unknown, result?: T) => void;
type SessionObject = Record<string, unknown> & {
  cookie?: { expires?: string | Date | null; [field: string]: unknown };
};

export interface ShoalStoreOptions {
  /** A shoal store, or a store URL (`redis://…`, `postgres://…`, `sqlite:…`, `memcached://…`). */
  store: SessionStore | string;
  /** Server-side lifetime of a session whose cookie has no expiry. Default 1 day (connect-redis' default). */
  ttlMs?: number;
  /** A session ends this long after it was first written, however active. Default 30 days. */
  absoluteMs?: number;
  /**
   * all(), length() and clear() list sessions through the store's per-user index: every session this
   * store writes is filed under this name. Default "express-session". memcached has no such index.
   */
  indexName?: string;
}

interface StoreBase {
  prototype: Record<'regenerate' | 'load' | 'createSession', (...args: unknown[]) => unknown>;
}

const requireCjs = createRequire(import.meta.url);
let base: StoreBase | undefined;

/** express-session's own Store methods (createSession, regenerate, load), borrowed so its Session/Cookie are used. */
function storeBase(): StoreBase {
  if (base) return base;
  try {
    base = (requireCjs('express-session') as { Store: StoreBase }).Store;
    return base;
  } catch (err) {
    throw new MissingDependencyError('express-session', 'ShoalStore (an express-session store)', { cause: err });
  }
}

/**
 * An express-session `Store` over any shoal store, for apps that keep express-session itself.
 * It gives shared storage on every shoal backend, and nothing more: express-session hands a store
 * the whole session object, so concurrent requests still overwrite each other's writes, and
 * there is no exactly-once end event. The drop-in, `session()` from `shoal/express-session`,
 * gives both.
 */
export class ShoalStore extends EventEmitter {
  readonly #store: Promise<SessionStore>;
  readonly #ttlMs: number;
  readonly #absoluteMs: number;
  readonly #index: string;

  constructor(options: ShoalStoreOptions) {
    super();
    storeBase(); // fail here, not on the first request, when express-session is missing
    if (!options || (typeof options.store !== 'string' && typeof options.store?.commit !== 'function')) {
      throw new ConfigError(
        'ShoalStore needs { store }: a shoal store or a store URL such as "redis://127.0.0.1:6379"',
      );
    }
    this.#store = typeof options.store === 'string' ? createStore(options.store) : Promise.resolve(options.store);
    this.#store.catch(() => {});
    this.#ttlMs = options.ttlMs ?? 86_400_000;
    this.#absoluteMs = options.absoluteMs ?? 30 * 86_400_000;
    this.#index = options.indexName ?? 'express-session';
  }

  regenerate(req: unknown, callback: Callback): void {
    storeBase().prototype.regenerate.call(this, req, callback);
  }

  load(sid: string, callback: Callback<unknown>): void {
    storeBase().prototype.load.call(this, sid, callback);
  }

  createSession(req: unknown, sess: unknown): unknown {
    return storeBase().prototype.createSession.call(this, req, sess);
  }

  get(sid: string, callback: Callback<SessionObject | null>): void {
    this.#run(callback, async (store) => {
      const record = await store.load(sid, Date.now());
      return record ? toObject(record) : null;
    });
  }

  /** Writes every property of the session (express-session gives no less): concurrent writes are lost. */
  set(sid: string, sess: SessionObject, callback?: Callback): void {
    this.#run(callback, async (store) => {
      const now = Date.now();
      const set: Record<string, string> = {};
      for (const [key, value] of Object.entries(sess)) {
        const text = JSON.stringify(value);
        if (text !== undefined) set[key] = text;
      }
      const idleDeadline = this.#deadline(sess, now);
      const current = await store.load(sid, now);
      if (current) {
        const del = Object.keys(current.attributes).filter((key) => !(key in set));
        const r = await store.commit(sid, { set, ...(del.length ? { del } : {}) }, { now, idleDeadline });
        if (r.status === 'ok' || r.status === 'gone') return; // gone: ended meanwhile, and stays ended
      }
      // create() refuses an id that was destroyed: a logged-out session is never written back.
      await store.create({
        id: sid,
        meta: {
          createdAt: now,
          lastSeenAt: now,
          idleDeadline,
          absoluteDeadline: now + this.#absoluteMs,
          userId: this.#index,
          rev: 1,
        },
        attributes: set,
      });
    });
  }

  destroy(sid: string, callback?: Callback): void {
    this.#run(callback, async (store) => {
      await store.destroy(sid, Date.now());
    });
  }

  touch(sid: string, sess: SessionObject, callback?: Callback): void {
    this.#run(callback, async (store) => {
      const now = Date.now();
      await store.touch(sid, now, this.#deadline(sess, now));
    });
  }

  all(callback: Callback<SessionObject[]>): void {
    this.#run(callback, async (store) => {
      const now = Date.now();
      const listed = await this.#list(store, now);
      const loaded = await Promise.all(listed.map((s) => store.load(s.id, now)));
      return loaded.filter((s): s is StoredSession => s !== null).map((s) => ({ ...toObject(s), id: s.id }));
    });
  }

  length(callback: Callback<number>): void {
    this.#run(callback, async (store) => (await this.#list(store, Date.now())).length);
  }

  clear(callback?: Callback): void {
    this.#run(callback, async (store) => {
      const now = Date.now();
      await Promise.all((await this.#list(store, now)).map((s) => store.destroy(s.id, now)));
    });
  }

  /** Closes the shoal store. */
  async close(): Promise<void> {
    await (await this.#store).close();
  }

  async #list(store: SessionStore, now: number): Promise<StoredSession[]> {
    if (!store.capabilities.userIndex) {
      throw new ConfigError(
        `ShoalStore: all(), length() and clear() need a store that can list sessions; the ${store.kind} store cannot`,
      );
    }
    return store.listByUser(this.#index, now);
  }

  /** The session lives as long as its cookie, or ttlMs for a browser-session cookie. */
  #deadline(sess: SessionObject, now: number): number {
    const expires = sess.cookie?.expires;
    const at = expires ? new Date(expires).valueOf() : Number.NaN;
    return Number.isFinite(at) ? at : now + this.#ttlMs;
  }

  #run<T>(callback: Callback<T> | undefined, work: (store: SessionStore) => Promise<T>): void {
    this.#store.then(work).then(
      (result) => callback?.(null, result),
      (err: unknown) => {
        if (callback) callback(err);
        else if (this.listenerCount('error') > 0) this.emit('error', err);
      },
    );
  }
}

function toObject(record: StoredSession): SessionObject {
  const out: SessionObject = {};
  for (const [key, text] of Object.entries(record.attributes)) out[key] = JSON.parse(text);
  // express-session cannot build a session without a cookie record.
  out.cookie ??= { originalMaxAge: null, expires: null, httpOnly: true, path: '/' };
  return out;
}
