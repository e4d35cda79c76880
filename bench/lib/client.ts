/**
 * One browser (one cookie jar) in front of a round-robin balancer: each request
 * goes to the next node, no stickiness — the setup shoal is built for.
 */
export class RoundRobinBrowser {
  /** name → value of every cookie the servers set. */
  readonly cookies = new Map<string, string>();
  #turn = 0;

  constructor(readonly urls: readonly string[]) {
    if (urls.length === 0) throw new Error('RoundRobinBrowser needs at least one node URL');
  }

  /** The next node's base URL. */
  next(): string {
    return this.urls[this.#turn++ % this.urls.length] as string;
  }

  get cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** Sends `path` to the next node with this browser's cookies and keeps the cookies it answers with. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('cookie', this.cookieHeader);
    const res = await fetch(this.next() + path, {
      ...init,
      headers,
      signal: init.signal ?? AbortSignal.timeout(15_000),
    });
    this.take(res);
    return res;
  }

  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const pair = line.split(';')[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq);
      if (/(^|;)\s*Max-Age=0/i.test(line) || /Expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(eq + 1));
    }
  }
}

/** A JSON body, or an error that says which request answered what. */
export async function json<T>(res: Response, what: string): Promise<T> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 300)}`);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${what}: not JSON: ${text.slice(0, 300)}`);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight (setup traffic must not look like the load). */
export async function mapLimit<I, O>(items: readonly I[], limit: number, fn: (item: I, index: number) => Promise<O>) {
  const out: O[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as I, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
