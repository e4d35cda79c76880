export interface Endpoints {
  ws: string;
  sse: string;
}

/**
 * The WebSocket and SSE URLs for one gateway address. `url` may be ws(s):,
 * http(s): or relative to the page. A gateway serves `<base>/ws` and
 * `<base>/sse` (deploy/nginx/shoal.conf routes exactly these two), and `url` is
 * either of `<base>/ws` or `<base>`: so the SSE endpoint, unless given, is
 * `/sse` beside a final `/ws` segment, or appended to any other path. A path
 * prefix (a proxy routing /realtime/ to the gateways) is kept on both.
 */
export function endpoints(url: string, sseUrl?: string): Endpoints {
  const page = (globalThis as { location?: { href: string } }).location?.href;
  const base = new URL(url, page);
  const ws = new URL(base.href);
  if (ws.protocol === 'http:') ws.protocol = 'ws:';
  if (ws.protocol === 'https:') ws.protocol = 'wss:';
  let sse: URL;
  if (sseUrl !== undefined) {
    sse = new URL(sseUrl, base);
  } else {
    sse = new URL(base.href);
    sse.pathname = `${sse.pathname.replace(/(\/ws)?\/*$/, '')}/sse`;
  }
  if (sse.protocol === 'ws:') sse.protocol = 'http:';
  if (sse.protocol === 'wss:') sse.protocol = 'https:';
  if (!/^wss?:$/.test(ws.protocol) || !/^https?:$/.test(sse.protocol)) {
    throw new TypeError(`connect() needs an http(s) or ws(s) URL, got "${url}"`);
  }
  return { ws: ws.href, sse: sse.href };
}

/** Adds the connect parameters to a URL that may already carry its own query. */
export function withParams(base: string, params: URLSearchParams): string {
  const u = new URL(base);
  for (const [k, v] of params) u.searchParams.set(k, v);
  return u.href;
}
