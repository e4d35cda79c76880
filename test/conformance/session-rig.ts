import { afterAll, beforeAll } from 'vitest';
import type { SessionManager } from '../../src/session/manager.js';
import type { SessionSchema } from '../../src/session/options.js';
import type { Session } from '../../src/session/session.js';
import type { SessionStore } from '../../src/stores/contract.js';

/** Connects a new client of the store under test; `namespace` selects an independent scope. */
export type ConnectStore = (options?: { namespace?: string }) => Promise<SessionStore>;

export type Loose = Record<string, unknown>;

/** The Cookie header a browser sends after receiving `setCookie` (undefined = unchanged). */
export function nextCookie(current: string | undefined, setCookie: string | undefined): string | undefined {
  if (setCookie === undefined) return current;
  if (/Max-Age=0/.test(setCookie)) return undefined;
  return setCookie.split(';')[0];
}

/** One HTTP request's worth of session work, without HTTP: open, act, commit, read Set-Cookie. */
export async function request<T extends SessionSchema, R>(
  manager: SessionManager<T>,
  cookie: string | undefined,
  act: (s: Session<T>) => R | Promise<R>,
) {
  const session = manager.open(cookie);
  const result = await act(session);
  await session.commit();
  const setCookie = manager.setCookieHeader(session);
  return { result, session, setCookie, cookie: nextCookie(cookie, setCookie) };
}

/** A fresh session holding `data`; returns its cookie and id. */
export async function seed<T extends SessionSchema>(manager: SessionManager<T>, data: Partial<T>) {
  const r = await request(manager, undefined, (s) => {
    for (const [k, v] of Object.entries(data)) s.set(k as keyof T & string, v as T[keyof T & string]);
  });
  if (!r.cookie || !r.session.id) throw new Error('seeding a session did not issue a cookie');
  return { cookie: r.cookie, id: r.session.id };
}

export interface TwoNodes {
  /** Node A's store client (valid inside tests). */
  readonly a: SessionStore;
  readonly b: SessionStore;
  /** Registers managers to close after the suite; returns them. */
  track<M extends { close(): Promise<void> }>(...managers: M[]): M[];
}

/**
 * Two clients of one store — two web nodes — connected before the suite's tests and
 * closed after them, with the managers made over them.
 */
export function twoNodes(connectStore: ConnectStore): TwoNodes {
  let a: SessionStore | undefined;
  let b: SessionStore | undefined;
  const managers: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    a = await connectStore();
    b = await connectStore();
  });
  afterAll(async () => {
    await Promise.all(managers.map((m) => m.close()));
    await Promise.all([a?.close(), b?.close()]);
  });
  const connected = (s: SessionStore | undefined) => {
    if (!s) throw new Error('the store clients are connected in beforeAll: use them inside tests');
    return s;
  };
  return {
    get a() {
      return connected(a);
    },
    get b() {
      return connected(b);
    },
    track(...made) {
      managers.push(...made);
      return made;
    },
  };
}
