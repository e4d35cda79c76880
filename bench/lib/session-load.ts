import autocannon from 'autocannon';
import type { BenchNode } from './nodes.js';

/** The two session routes of scenario 1 that per-request benchmarks drive. */
export const ROUTES = {
  read: { method: 'GET', path: '/session' },
  write: { method: 'POST', path: '/set/k' },
} as const;
export type Route = keyof typeof ROUTES;

/** As in scenario 1: a different value on every write, so no server can skip it as unchanged. */
const WRITE_PREFIX = `${'v'.repeat(56)}-`;

/** One browser per connection: a login, then one attribute. Returns their Cookie headers. */
export async function login(node: BenchNode, runId: string, stateful: boolean, browsers: number): Promise<string[]> {
  const cookies: string[] = [];
  for (let i = 0; i < browsers; i++) {
    const res = await fetch(`${node.url}/login?user=${runId}-u${i}`, { method: 'POST' });
    if (!res.ok) throw new Error(`${node.name} login answered ${res.status}`);
    const cookie = res.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ');
    if (stateful && !cookie) throw new Error(`${node.name} login set no cookie`);
    await fetch(`${node.url}/set/k`, { method: 'POST', body: `${WRITE_PREFIX}seed`, headers: { cookie } });
    cookies.push(cookie);
  }
  return cookies;
}

/** Sends exactly `amount` requests of `route`, one browser (cookie) per connection. */
export async function load(
  node: BenchNode,
  route: Route,
  cookies: string[],
  amount: number,
  options: { timeoutS?: number } = {},
): Promise<void> {
  let connection = 0;
  let sent = 0;
  const { method, path } = ROUTES[route];
  const result = await autocannon({
    url: node.url,
    connections: cookies.length,
    amount,
    timeout: options.timeoutS ?? 10,
    setupClient: (client) => {
      const cookie = cookies[connection++ % cookies.length] ?? '';
      client.setRequests([
        {
          method,
          path,
          headers: { cookie, 'content-type': 'text/plain' },
          ...(method === 'POST' ? { setupRequest: (r) => ({ ...r, body: `${WRITE_PREFIX}${sent++}` }) } : {}),
        },
      ]);
    },
  });
  const failed = result.non2xx + result.errors + result.timeouts;
  if (failed > 0) {
    throw Object.assign(
      new Error(
        `${node.name} ${route}: ${failed} of ${amount} requests failed (statuses ${JSON.stringify(result.statusCodeStats)}; ` +
          `${result.errors} errors; ${result.timeouts} timeouts)`,
      ),
      { onlyConnectionErrors: result.non2xx === 0 && result.timeouts === 0 },
    );
  }
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[(s.length - 1) / 2] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
