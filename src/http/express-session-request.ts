import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { newSessionId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { checkCommitSize, decodeValue } from '../session/codec.js';
import { readCookie } from '../session/cookie.js';
import { MAX_LIFETIME_MS, resolveLifetime } from '../session/lifetime.js';
import { type SessionManager, sessionContext } from '../session/manager.js';
import type { SessionStartContext } from '../session/options.js';
import { createRecord, fetchRecord, insertRecord } from '../session/records.js';
import { recordMeta, recordTexts, rotateAway, type Session } from '../session/session.js';
import type { HeldCommit } from './commit-before-headers.js';
import {
  type CookieOptions,
  cookieShape,
  movedSessionId,
  SessionCookie,
  type StoredCookie,
  unsignLegacy,
} from './express-session-cookie.js';
import { DropInSession, renameSession, type SessionControl } from './express-session-object.js';
import type { LegacyStore } from './express-session-options.js';
import { COOKIE, same, storedForm, texts, withoutCookie } from './express-session-texts.js';
import { RequestSlot } from './request-slot.js';

/**
 * How long after a session moved from an express-session store its old cookie still leads to it:
 * for the requests the browser sent before the new cookie reached it. After that, nowhere.
 */
const MOVE_WINDOW_MS = 60_000;

/** `req.sessionID`, kept off Express's requests (see RequestSlot). */
const sessionIdSlot = new RequestSlot<string>('sessionID', (id) => id);

/** The request as the drop-in sees it (Express's getters when there, plain node:http otherwise). */
export type DropInRequest = IncomingMessage & {
  session?: DropInSession | null;
  sessionID?: string;
  originalUrl?: string;
  /** Express's req.secure (honours `trust proxy`). */
  secure?: boolean;
};

/** Everything per middleware, resolved once. */
export interface DropInConfig {
  manager: SessionManager;
  name: string;
  secrets: string[];
  rolling: boolean;
  resave: boolean;
  saveUninitialized: boolean;
  unsetDestroy: boolean;
  proxy: boolean | undefined;
  migrateFrom: LegacyStore | undefined;
  logger: Logger;
  /** The end-of-request commit, a failure of it logged (made once: no closure per request). */
  commit: HeldCommit<RequestSession>;
}

/**
 * One request's session, with express-session's rules for when to save and when to send the
 * cookie (kept line for line: see shouldSave / shouldSetCookie in express-session), and
 * shoal's way of saving: only the top-level properties whose JSON changed since they were
 * read, as field deltas, so concurrent requests on other properties keep theirs.
 */
export class RequestSession implements SessionControl {
  readonly #c: DropInConfig;
  readonly #req: DropInRequest;
  readonly #ctx: SessionStartContext;
  readonly #cookieOptions: CookieOptions;
  /** The id the cookie carried (verified), whether or not the store still had it. */
  #cookieId: string | undefined;
  #id = '';
  /** The id at the start of the request: express-session keeps it through regenerate(). */
  #originalId = '';
  /** The session exists in the store (loaded, or created by a save). */
  #exists = false;
  /** Commits to an existing session go through a shoal Session (encryption, size budget, tombstones). */
  #shoal: Session | null = null;
  /** Property → JSON text as the store holds it, `cookie` included. */
  #stored = new Map<string, string>();
  /** Property → JSON text when the request began (or the session was generated), `cookie` excluded. */
  #original = new Map<string, string>();
  /** cookieShape() of the cookie as the store holds it (or as it was made, when it holds none). */
  #storedCookie = '';
  /** express-session's savedHash is set: #stored is what a save wrote (or what was read, without resave). */
  #savedValid = false;
  #touched = false;
  /** The session's own idle length as the store holds it (undefined: the manager's idleTimeout). */
  #storedIdle: number | undefined;
  /** Reached through an express-session cookie (migrateFrom): the response sends the shoal cookie. */
  #moved = false;
  #object!: DropInSession;

  constructor(config: DropInConfig, req: DropInRequest, ctx: SessionStartContext, cookieOptions: CookieOptions) {
    this.#c = config;
    this.#req = req;
    this.#ctx = ctx;
    this.#cookieOptions = cookieOptions;
  }

  /** Sets req.session before the handlers run: loaded, migrated, or new. */
  async open(): Promise<void> {
    const header = this.#req.headers.cookie;
    if (this.#c.migrateFrom && (await this.#migrate(header))) return;
    const { id } = this.#c.manager.idFromCookie(header);
    this.#cookieId = id ?? undefined;
    if (id) {
      const shoal = this.#c.manager.openId(id, this.#ctx);
      if (await shoal.load()) return this.#inflate(id, shoal);
    }
    this.#generate(true);
  }

  /** At the end of the request, before the headers: saves or touches, and says which cookie to send. */
  async finish(): Promise<string[]> {
    const sess = this.#req.session;
    if (!sess) {
      if (this.#c.unsetDestroy && this.#exists) await this.destroy();
      return [];
    }
    if (!this.#touched) {
      sess.touch();
      this.#touched = true;
    }
    const current = texts(sess);
    const modified = this.#originalId !== this.#id || !same(current, this.#original);
    const saved = this.#originalId === this.#id && this.#savedValid && same(current, this.#stored);
    const isNew = this.#cookieId !== this.#id;
    const shouldSave = !this.#c.saveUninitialized && !this.#savedValid && isNew ? modified : !saved;
    if (shouldSave) await this.#write(sess, current);
    else if (this.#exists && !isNew) await this.#touch(sess, current);
    const setCookie = isNew
      ? this.#c.saveUninitialized || modified
      : this.#moved || this.#c.rolling || (sess.cookie.expires != null && modified);
    if (!setCookie || !this.#exists) return [];
    if (sess.cookie.secure && !this.#secure()) return [];
    return [sess.cookie.serialize(this.#c.name, this.#c.manager.sign(this.#id))];
  }

  async save(session: DropInSession): Promise<void> {
    await this.#write(session, texts(session));
    this.#savedValid = true;
  }

  async reload(): Promise<void> {
    const shoal = this.#exists ? this.#c.manager.openId(this.#id, this.#ctx) : null;
    if (!shoal || !(await shoal.load())) throw new Error('failed to load session');
    const original = this.#original;
    const originalId = this.#originalId;
    this.#inflate(this.#id, shoal);
    // As express-session: reload replaces the data, not the request's starting point.
    this.#original = original;
    this.#originalId = originalId;
  }

  async destroy(): Promise<void> {
    delete this.#req.session;
    if (!this.#exists) return;
    this.#exists = false;
    this.#shoal = null;
    await this.#c.manager.destroySession(this.#id);
  }

  async regenerate(): Promise<void> {
    if (!this.#exists) return this.#generate(false);
    // Rotation, not an end: the old id is refused everywhere, onSessionEnd does not fire for it.
    // The visit goes on under the new id, stored at once (empty), so that it still ends exactly
    // once: passport's logout regenerates and then destroy()s, and an unstored successor would
    // have left nothing to end.
    const context = sessionContext(this.#c.manager);
    const successor = await createRecord(context, newSessionId(), {}, null, this.#ctx.client);
    await rotateAway(context, this.#id);
    this.#generate(false, successor.record.id);
    this.#exists = true;
    this.#shoal = this.#c.manager.openId(this.#id, this.#ctx);
  }

  report(err: unknown, what: string): void {
    this.#c.logger.error({ err, op: what }, `req.session.${what}() failed and no callback was given`);
  }

  /**
   * No property to save: a (throttled) touch, which writes nothing. But a cookie the request
   * changed ("remember me" sets only cookie.maxAge, or an attribute) is stored, as express-session's
   * store.touch() keeps it, so the next request on any node, and rolling's renewed cookie, have it.
   * The properties are then the ones stored, so the write is the cookie alone.
   */
  async #touch(sess: DropInSession, current: Map<string, string>): Promise<void> {
    if (cookieShape(sess.cookie) !== this.#storedCookie) return this.#write(sess, current);
    const shoal = this.#shoal;
    if (!shoal) return;
    // A session stored before its lifetime followed its cookie gets it now, once.
    const follows = this.#followCookie(shoal, sess.cookie);
    await shoal.commit();
    if (follows && shoal.id !== null) this.#storedIdle = this.#idleFor(sess.cookie);
  }

  /**
   * The server-side idle length a cookie asks for: its maxAge when that is longer than the
   * manager's idleTimeout ("remember me"; at most 400 days), else none of its own. connect-redis
   * gives each session its cookie's lifetime the same way, as the TTL of every save.
   */
  #idleFor(cookie: SessionCookie): number | undefined {
    const maxAge = cookie.originalMaxAge;
    if (maxAge === null || !(maxAge > this.#c.manager.config.idleMs)) return undefined;
    return Math.min(Math.round(maxAge), MAX_LIFETIME_MS);
  }

  /** Gives the session the lifetime its cookie asks for, when the store holds another; true when it did. */
  #followCookie(shoal: Session, cookie: SessionCookie): boolean {
    const idle = this.#idleFor(cookie);
    if (idle === this.#storedIdle) return false;
    // absolute left out: the longer of absoluteTimeout and idle.
    shoal.setLifetime(idle === undefined ? null : { idle });
    return true;
  }

  /** A new, empty session under a new id (or `id`), not stored until it is saved. */
  #generate(start: boolean, id = newSessionId()): void {
    this.#id = id;
    if (start) {
      // regenerate() keeps the request's starting point and savedHash, as express-session does.
      this.#originalId = this.#id;
      this.#original = new Map();
      this.#savedValid = false;
    }
    this.#exists = false;
    this.#shoal = null;
    this.#stored = new Map();
    this.#storedIdle = undefined;
    this.#setObject(new DropInSession(this, this.#req, this.#id, this.#newCookie()));
  }

  /**
   * Makes req.session of a session just loaded. The stored texts are decoded here rather than read
   * through the Session (which would track each object read, to re-encode it at the commit), and
   * kept as they are: they are the JSON the properties are compared with at the end.
   */
  #inflate(id: string, shoal: Session): void {
    this.#id = this.#originalId = id;
    this.#exists = true;
    this.#shoal = shoal;
    this.#storedIdle = recordMeta(shoal)?.idleMs;
    const texts = recordTexts(shoal) ?? {};
    const storedCookie = texts[COOKIE] === undefined ? undefined : decodeValue(COOKIE, texts[COOKIE]);
    const cookie =
      typeof storedCookie === 'object' && storedCookie !== null
        ? SessionCookie.fromStored(storedCookie as StoredCookie)
        : this.#newCookie(); // a session written through shoal's own API has no cookie record
    const object = new DropInSession(this, this.#req, id, cookie);
    this.#stored = new Map();
    for (const key of Object.keys(texts)) {
      const text = texts[key] as string;
      this.#stored.set(key, text);
      if (key !== COOKIE) object[key] = decodeValue(key, text);
    }
    this.#original = withoutCookie(this.#stored);
    this.#storedCookie = cookieShape(cookie);
    this.#savedValid = !this.#c.resave;
    this.#setObject(object);
  }

  #setObject(object: DropInSession): void {
    this.#object = object;
    this.#req.session = object;
    this.#setId(object.id);
  }

  #setId(id: string): void {
    if (!sessionIdSlot.keep(this.#req, id)) this.#req.sessionID = id;
  }

  #newCookie(): SessionCookie {
    const { secure, sameSite, ...rest } = this.#cookieOptions;
    const https = secure === 'auto' || sameSite === 'auto' ? this.#secure() : false;
    return new SessionCookie({
      ...rest,
      ...(secure === undefined ? {} : { secure: secure === 'auto' ? https : secure }),
      ...(sameSite === undefined ? {} : { sameSite: sameSite === 'auto' ? (https ? 'none' : 'lax') : sameSite }),
    });
  }

  /** Stores the session: created with every property the first time, then only what changed. */
  async #write(sess: DropInSession, current: Map<string, string>): Promise<void> {
    const all = new Map(current);
    all.set(COOKIE, JSON.stringify(sess.cookie));
    if (!this.#exists) {
      await this.#create(all, this.#idleFor(sess.cookie));
    } else {
      const shoal = this.#shoal ?? this.#c.manager.openId(this.#id, this.#ctx);
      for (const [key, text] of all) if (this.#stored.get(key) !== text) shoal.set(key, storedForm(sess, key, text));
      for (const key of this.#stored.keys()) if (!all.has(key)) shoal.delete(key);
      this.#followCookie(shoal, sess.cookie);
      await shoal.commit();
      if (shoal.id === null) {
        // Ended elsewhere (logout on another node, expiry) while this request ran: never brought back.
        this.#exists = false;
        this.#shoal = null;
        return;
      }
      if (shoal.id !== this.#id) this.#adopt(shoal.id);
    }
    this.#stored = all;
    this.#storedCookie = cookieShape(sess.cookie);
    this.#storedIdle = this.#idleFor(sess.cookie);
    // A Session commits once; a later write in this request opens a fresh one. A touch needs none: this write slid the deadline.
    this.#shoal = null;
  }

  async #create(all: Map<string, string>, idle: number | undefined): Promise<void> {
    const context = sessionContext(this.#c.manager);
    const texts = Object.fromEntries(all);
    checkCommitSize(texts, context.config.maxSize);
    const lifetime = idle === undefined ? undefined : resolveLifetime({ idle }, context.config);
    await createRecord(context, this.#id, texts, null, this.#ctx.client, lifetime);
    this.#exists = true;
  }

  /** The store replaced a session that ended mid-request by a new one (see Session.commit). */
  #adopt(id: string): void {
    this.#id = id;
    renameSession(this.#object, id);
    this.#setId(id);
  }

  /**
   * An express-session cookie whose session the old store has (or had a moment ago): the request
   * gets the shoal session it moves to. The moved session's id is derived from the old one
   * (movedSessionId), so every request that presents the cookie, on any node and in any order,
   * creates or finds the same session, and the old entry is deleted only once that session exists:
   * a request that finds the old entry gone finds the moved session instead. After
   * MOVE_WINDOW_MS the old cookie leads nowhere. A moved session that ended (logout, rotation) is
   * not brought back by it: its old entry is gone, and the store refuses to create an id it ended.
   */
  async #migrate(header: string | undefined): Promise<boolean> {
    const [raw, ...more] = readCookie(header, this.#c.name);
    if (raw === undefined || more.length > 0) return false;
    const legacy = unsignLegacy(raw, this.#c.secrets);
    if (!legacy) return false;
    const id = movedSessionId(legacy);
    const found = await this.#openMoved(id);
    if (found === 'absent') {
      const data = await legacyGet(this.#c.migrateFrom as LegacyStore, legacy.id);
      if (data && (await this.#createMoved(id, data))) await this.#dropLegacy(legacy.id);
      // Created here, or by a request that raced this one (which deleted the old entry only after).
      if ((await this.#openMoved(id)) === 'opened') return true;
    } else if (found === 'opened') {
      return true;
    }
    this.#generate(true);
    return true;
  }

  /** Opens the moved session if it is live and moved within MOVE_WINDOW_MS; 'spent' if it moved longer ago. */
  async #openMoved(id: string): Promise<'opened' | 'spent' | 'absent'> {
    const context = sessionContext(this.#c.manager);
    const found = await fetchRecord(context.services, id);
    if (!found) return 'absent';
    if (Date.now() - found.record.meta.createdAt >= MOVE_WINDOW_MS) return 'spent';
    const shoal = this.#c.manager.openId(id, this.#ctx);
    if (!(await shoal.load())) return 'absent';
    this.#inflate(id, shoal);
    this.#cookieId = id;
    this.#moved = true;
    return 'opened';
  }

  /** Stores the old session's data under the moved id; false when a racing request already did (or it ended). */
  async #createMoved(id: string, data: Record<string, unknown>): Promise<boolean> {
    const stored = data[COOKIE];
    const cookie =
      typeof stored === 'object' && stored !== null
        ? SessionCookie.fromStored(stored as StoredCookie)
        : this.#newCookie();
    const values: Record<string, string> = {};
    for (const [key, value] of Object.entries(data)) {
      const text = key === COOKIE ? undefined : JSON.stringify(value);
      if (text !== undefined) values[key] = text;
    }
    values[COOKIE] = JSON.stringify(cookie);
    const context = sessionContext(this.#c.manager);
    checkCommitSize(values, context.config.maxSize);
    // A "remember me" cookie moves with its server-side lifetime, as a session saved here gets it.
    const idle = this.#idleFor(cookie);
    const lifetime = idle === undefined ? undefined : resolveLifetime({ idle }, context.config);
    return (await insertRecord(context, id, values, null, this.#ctx.client, lifetime)) !== null;
  }

  async #dropLegacy(id: string): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => {
        const done = (err?: unknown) => (err ? reject(err) : resolve());
        const r = (this.#c.migrateFrom as LegacyStore).destroy(id, done);
        if (r instanceof Promise) r.then(() => resolve(), reject);
      });
    } catch (err) {
      // The copy is already made; the old entry expires on its own TTL.
      this.#c.logger.warn({ err }, 'could not delete a migrated express-session entry; it will expire on its own');
    }
  }

  /** express-session's issecure(): TLS socket, else X-Forwarded-Proto when proxy is true, else req.secure. */
  #secure(): boolean {
    if ((this.#req.socket as TLSSocket | undefined)?.encrypted) return true;
    if (this.#c.proxy === false) return false;
    if (this.#c.proxy !== true) return this.#req.secure === true;
    const header = this.#req.headers['x-forwarded-proto'];
    const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0] ?? '';
    return first.trim().toLowerCase() === 'https';
  }
}

function legacyGet(store: LegacyStore, id: string): Promise<Record<string, unknown> | null> {
  return new Promise((resolve, reject) => {
    const r = store.get(id, (err, session) => (err ? reject(err) : resolve(session ?? null)));
    if (r instanceof Promise) r.then((s: unknown) => resolve((s as Record<string, unknown>) ?? null), reject);
  });
}
