import { randomUUID } from 'node:crypto';
import { CookieJar } from '../helpers/cookie-jar.js';

/** One HTTP request a virtual browser made, as the browser saw it. */
export interface RequestRecord {
  id: string;
  browser: number;
  method: string;
  path: string;
  /** Date.now() before the request was sent and after the response body arrived (or the error). */
  start: number;
  end: number;
  status: number;
  error?: string;
  node?: string;
}

export interface BrowserResult {
  index: number;
  user: string;
  /** Increments answered 200. */
  increments: number;
  /** Increments whose request failed but which the store had applied (seen on re-sync). */
  appliedUnanswered: number;
  /** The counter the browser expects: increments + appliedUnanswered. */
  expected: number;
  /** The counter the last GET /session showed. */
  final: number | undefined;
  /** Times the session was gone after a failed login and the browser logged in again. */
  restarts: number;
}

export interface LoadResult {
  records: RequestRecord[];
  browsers: BrowserResult[];
  /** Read-your-writes or lost-update violations, in words. Must be empty. */
  violations: string[];
}

interface SessionView {
  id?: string;
  attributes: { n?: number; note?: string; userId?: string };
}

const FAILED = Symbol('failed');

/**
 * N browsers, each with its own cookie jar, each doing login / set / incr / GET
 * /session in a loop until `until` and checking read-your-writes after every step.
 * A failed request leaves its outcome unknown (the node may have committed before
 * dying), so the browser re-reads its session and accepts only the two outcomes
 * that are possible; anything else is a violation. Bounded by time and by count.
 */
export async function runBrowsers(o: {
  base: string;
  browsers: number;
  until: number;
  runId: string;
  maxRequestsPerBrowser?: number;
}): Promise<LoadResult> {
  const records: RequestRecord[] = [];
  const violations: string[] = [];
  const browsers = await Promise.all(
    Array.from({ length: o.browsers }, (_, index) => browse(index, o, records, violations)),
  );
  return { records, browsers, violations };
}

async function browse(
  index: number,
  o: { base: string; until: number; runId: string; maxRequestsPerBrowser?: number },
  records: RequestRecord[],
  violations: string[],
): Promise<BrowserResult> {
  const jar = new CookieJar();
  const user = `nginx-${o.runId}-${index}`;
  const result: BrowserResult = {
    index,
    user,
    increments: 0,
    appliedUnanswered: 0,
    expected: 0,
    final: undefined,
    restarts: 0,
  };
  const cap = o.maxRequestsPerBrowser ?? 20_000;
  let sent = 0;
  const violate = (what: string) => violations.push(`browser ${index}: ${what}`);

  const request = async <T>(method: string, path: string, body?: string): Promise<T | typeof FAILED> => {
    sent++;
    const rec: RequestRecord = { id: randomUUID(), browser: index, method, path, start: Date.now(), end: 0, status: 0 };
    records.push(rec);
    try {
      const res = await jar.fetch(o.base + path, {
        method,
        ...(body !== undefined ? { body } : {}),
        headers: { 'x-request-id': rec.id },
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      rec.end = Date.now();
      rec.status = res.status;
      rec.node = res.headers.get('x-shoal-node') ?? undefined;
      if (res.status !== 200) return FAILED;
      return JSON.parse(text) as T;
    } catch (err) {
      rec.end = Date.now();
      rec.error = String((err as Error).cause ?? err);
      return FAILED;
    }
  };

  const login = async () => {
    const r = await request<{ user: string }>('POST', `/login?user=${user}`);
    if (r !== FAILED && r.user !== user) violate(`login answered for ${r.user}`);
    return r !== FAILED;
  };

  /** After a failure: what does the store say now? Bounded retries (the failure may repeat). */
  const resync = async (failed: 'incr' | 'login' | 'other'): Promise<boolean> => {
    for (let i = 0; i < 5 && Date.now() < o.until + 10_000; i++) {
      const view = await request<SessionView>('GET', '/session');
      if (view === FAILED) continue;
      const n = view.attributes.n ?? 0;
      if (view.attributes.userId !== user) {
        // Only a login that died mid-rotation can leave the browser without its session.
        if (failed !== 'login') violate(`session lost: userId ${view.attributes.userId} after a failed ${failed}`);
        result.restarts++;
        result.increments = 0;
        result.appliedUnanswered = 0;
        result.expected = 0;
        return login();
      }
      if (n === result.expected) return true;
      if (failed === 'incr' && n === result.expected + 1) {
        result.appliedUnanswered++;
        result.expected = n;
        return true;
      }
      violate(`counter is ${n} after a failed ${failed}, expected ${result.expected}`);
      result.expected = n;
      return true;
    }
    return false;
  };

  if (!(await login()) && !(await resync('login'))) return result;
  for (let cycle = 1; Date.now() < o.until && sent < cap; cycle++) {
    // A periodic login rotates the session id (regenerate keepData): every node must follow.
    if (cycle % 8 === 0 && !(await login()) && !(await resync('login'))) break;

    const note = `${cycle}-${randomUUID().slice(0, 8)}`;
    const set = await request<{ ok: boolean }>('POST', '/set/note', note);
    if (set === FAILED && !(await resync('other'))) break;

    const incr = await request<{ value: number }>('POST', '/incr/n');
    if (incr === FAILED) {
      if (!(await resync('incr'))) break;
    } else {
      result.increments++;
      result.expected++;
      if (incr.value !== result.expected) violate(`incr answered ${incr.value}, expected ${result.expected}`);
    }

    const view = await request<SessionView>('GET', '/session');
    if (view === FAILED) {
      if (!(await resync('other'))) break;
      continue;
    }
    if (view.attributes.userId !== user) violate(`GET /session shows user ${view.attributes.userId}`);
    if ((view.attributes.n ?? 0) !== result.expected) {
      violate(`GET /session shows n=${view.attributes.n}, expected ${result.expected} (read-your-writes)`);
      result.expected = view.attributes.n ?? 0;
    }
    if (set !== FAILED && view.attributes.note !== note) {
      violate(`GET /session shows note=${view.attributes.note}, expected ${note} (read-your-writes)`);
    }
  }

  for (let i = 0; i < 5; i++) {
    const view = await request<SessionView>('GET', '/session');
    if (view === FAILED) continue;
    result.final = view.attributes.n ?? 0;
    break;
  }
  await request('POST', '/logout'); // cleanup: the session leaves the shared store
  return result;
}
