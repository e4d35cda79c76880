import { parseDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import type { ConnectProxyOptions } from './connect-proxy.js';
import type { RpcProxyOptions } from './rpc-types.js';
import type { SubscribeProxyOptions } from './subscribe-proxy.js';

/**
 * The connect proxy for `shoal gateway`: the app definition's `realtime.connectProxy`, each field
 * overridden by its variable when set — SHOAL_CONNECT_PROXY_URL, SHOAL_CONNECT_PROXY_HEADERS
 * (comma-separated header names), SHOAL_CONNECT_PROXY_TIMEOUT (a duration, e.g. 2s). Undefined
 * without a URL. A bad value is a ConfigError naming the variable.
 */
export function connectProxyFromEnv(
  env: Record<string, string | undefined>,
  fromApp: ConnectProxyOptions | undefined,
): ConnectProxyOptions | undefined {
  const url = proxyUrl(env, 'SHOAL_CONNECT_PROXY', fromApp, ['HEADERS', 'TIMEOUT']);
  if (!url) return undefined;
  // Split here rather than with app/env.ts: the realtime layer imports nothing from the app layer.
  const listed = (env.SHOAL_CONNECT_PROXY_HEADERS ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const headers = listed.length ? listed : fromApp?.headers;
  const timeoutMs = proxyTimeout(env, 'SHOAL_CONNECT_PROXY', fromApp);
  return { url, ...(headers ? { headers } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
}

/**
 * The subscribe proxy for `shoal gateway`: `realtime.subscribeProxy`, overridden by
 * SHOAL_SUBSCRIBE_PROXY_URL and SHOAL_SUBSCRIBE_PROXY_TIMEOUT. With the definition's own
 * `authorize` as well it is a ConfigError: two answers to one question would hide one of them.
 */
export function subscribeProxyFromEnv(
  env: Record<string, string | undefined>,
  fromApp: SubscribeProxyOptions | undefined,
  hasAuthorize: boolean,
): SubscribeProxyOptions | undefined {
  const url = proxyUrl(env, 'SHOAL_SUBSCRIBE_PROXY', fromApp, ['TIMEOUT']);
  if (!url) return undefined;
  if (hasAuthorize) {
    throw new ConfigError(
      'the app definition has realtime.authorize and a subscribe proxy is set (SHOAL_SUBSCRIBE_PROXY_URL or realtime.subscribeProxy): keep one',
    );
  }
  const timeoutMs = proxyTimeout(env, 'SHOAL_SUBSCRIBE_PROXY', fromApp);
  return { url, ...(timeoutMs !== undefined ? { timeoutMs } : {}) };
}

/**
 * The RPC proxy for `shoal gateway`: `realtime.rpcProxy`, overridden by SHOAL_RPC_PROXY_URL and
 * SHOAL_RPC_PROXY_TIMEOUT (a duration). Undefined without a URL.
 */
export function rpcProxyFromEnv(
  env: Record<string, string | undefined>,
  fromApp: RpcProxyOptions | undefined,
): RpcProxyOptions | undefined {
  const url = proxyUrl(env, 'SHOAL_RPC_PROXY', fromApp, ['TIMEOUT']);
  if (!url) return undefined;
  const timeoutMs = proxyTimeout(env, 'SHOAL_RPC_PROXY', fromApp);
  return {
    url,
    ...(fromApp?.headers ? { headers: fromApp.headers } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  };
}

type ProxyVariables = 'SHOAL_CONNECT_PROXY' | 'SHOAL_SUBSCRIBE_PROXY' | 'SHOAL_RPC_PROXY';

/**
 * `<prefix>_URL`, else the definition's URL; it must be an http(s) URL. Undefined when neither is
 * set, which is a ConfigError when one of `needsUrl` (the suffixes of `<prefix>_…` variables that
 * mean nothing without a URL) is set.
 */
function proxyUrl(
  env: Record<string, string | undefined>,
  prefix: ProxyVariables,
  fromApp: { url?: string } | undefined,
  needsUrl: string[],
): string | undefined {
  const name = `${prefix}_URL`;
  const url = env[name]?.trim() || fromApp?.url;
  if (!url) {
    if (needsUrl.some((suffix) => env[`${prefix}_${suffix}`])) {
      const [first, ...more] = needsUrl;
      const set = [`${prefix}_${first}`, ...more.map((suffix) => `_${suffix}`)].join(' / ');
      throw new ConfigError(`${set} ${more.length ? 'need' : 'needs'} ${name}, the app URL to ask`);
    }
    return undefined;
  }
  if (!/^https?:\/\/\S+$/.test(url)) {
    throw new ConfigError(`${name} must be an http(s) URL of the app, got ${JSON.stringify(url)}`);
  }
  return url;
}

/** `<prefix>_TIMEOUT` (a duration), else the definition's `timeoutMs`; at least 1 ms. */
function proxyTimeout(
  env: Record<string, string | undefined>,
  prefix: ProxyVariables,
  fromApp: { timeoutMs?: number } | undefined,
): number | undefined {
  const name = `${prefix}_TIMEOUT`;
  const timeout = env[name]?.trim();
  const timeoutMs = timeout ? parseDuration(timeout, name) : fromApp?.timeoutMs;
  if (timeoutMs !== undefined && timeoutMs < 1) throw new ConfigError(`${name} must be at least 1ms`);
  return timeoutMs;
}
