import { type AppCallFailure, postToApp } from './app-call.js';
import type { RpcProxyOptions } from './rpc-types.js';

/** What the RPC proxy came to: the app's result or error, or no usable answer. */
export type RpcProxyAnswer =
  | { result: unknown }
  | { error: { code: string; message: string } }
  | { failed: AppCallFailure };

/**
 * POSTs `{ method, data, user, session, connection, gateway }` to the app with the connection's
 * forwarded handshake headers; the app answers 200 `{ "result": … }` or `{ "error": { code,
 * message } }`. A timeout, a connection error, another status or another body is `failed`.
 */
export async function askRpcProxy(
  o: RpcProxyOptions,
  headers: Record<string, string>,
  body: {
    method: string;
    data: unknown;
    user: string | null;
    session: string | null;
    connection: string;
    gateway: string;
  },
): Promise<RpcProxyAnswer> {
  const got = await postToApp(o.url, headers, body, o.timeoutMs ?? 3000);
  if ('failed' in got) return got;
  const answer = got.body;
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) return { failed: 'malformed' };
  const a = answer as Record<string, unknown>;
  if (a.error !== undefined) {
    const e = a.error as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || typeof e.code !== 'string' || e.code === '')
      return { failed: 'malformed' };
    return {
      error: { code: e.code.slice(0, 100), message: typeof e.message === 'string' ? e.message.slice(0, 500) : '' },
    };
  }
  if (!('result' in a)) return { failed: 'malformed' };
  return { result: a.result };
}
