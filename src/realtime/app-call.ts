import type { IncomingMessage } from 'node:http';

/** How a call to the app's HTTP endpoint (connect, subscribe or RPC proxy) failed to give an answer. */
export type AppCallFailure = 'timeout' | 'unreachable' | 'status' | 'malformed';

/**
 * POSTs JSON to the app and reads its JSON answer: one attempt, bounded by `timeoutMs`, no
 * redirects. A timeout, a connection error, a non-2xx status or a body that is not JSON is
 * `failed`, never a throw: the proxies turn each into their own documented refusal.
 */
export async function postToApp(
  url: string,
  headers: Record<string, string>,
  body: unknown,
  timeoutMs: number,
): Promise<{ body: unknown } | { failed: AppCallFailure }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (err) {
    return { failed: (err as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable' };
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => {});
    return { failed: 'status' };
  }
  try {
    return { body: await res.json() };
  } catch (err) {
    return { failed: (err as Error).name === 'TimeoutError' ? 'timeout' : 'malformed' };
  }
}

/** The handshake's Cookie and allowlisted headers, what the connect and RPC proxies forward. */
export function forwardedHeaders(req: IncomingMessage, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['cookie', ...names.map((h) => h.toLowerCase())]) {
    const value = req.headers[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}
