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
  const url = env.SHOAL_CONNECT_PROXY_URL?.trim() || fromApp?.url;
  if (!url) {
    if (env.SHOAL_CONNECT_PROXY_HEADERS || env.SHOAL_CONNECT_PROXY_TIMEOUT) {
      throw new ConfigError('SHOAL_CONNECT_PROXY_HEADERS / _TIMEOUT need SHOAL_CONNECT_PROXY_URL, the app URL to ask');
    }
    return undefined;
  }
  if (!/^https?:\/\/\S+$/.test(url)) {
    throw new ConfigError(`SHOAL_CONNECT_PROXY_URL must be an http(s) URL of the app, got ${JSON.stringify(url)}`);
  }
  // Split here rather than with app/env.ts: the realtime layer imports nothing from the app layer.
  const listed = (env.SHOAL_CONNECT_PROXY_HEADERS ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const headers = listed.length ? listed : fromApp?.headers;
  const timeout = env.SHOAL_CONNECT_PROXY_TIMEOUT?.trim();
  const timeoutMs = timeout ? parseDuration(timeout, 'SHOAL_CONNECT_PROXY_TIMEOUT') : fromApp?.timeoutMs;
  if (timeoutMs !== undefined && timeoutMs < 1) {
    throw new ConfigError('SHOAL_CONNECT_PROXY_TIMEOUT must be at least 1ms');
  }
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
  const url = env.SHOAL_SUBSCRIBE_PROXY_URL?.trim() || fromApp?.url;
  if (!url) {
    if (env.SHOAL_SUBSCRIBE_PROXY_TIMEOUT) {
      throw new ConfigError('SHOAL_SUBSCRIBE_PROXY_TIMEOUT needs SHOAL_SUBSCRIBE_PROXY_URL, the app URL to ask');
    }
    return undefined;
  }
  if (!/^https?:\/\/\S+$/.test(url)) {
    throw new ConfigError(`SHOAL_SUBSCRIBE_PROXY_URL must be an http(s) URL of the app, got ${JSON.stringify(url)}`);
  }
  if (hasAuthorize) {
    throw new ConfigError(
      'the app definition has realtime.authorize and a subscribe proxy is set (SHOAL_SUBSCRIBE_PROXY_URL or realtime.subscribeProxy): keep one',
    );
  }
  const timeout = env.SHOAL_SUBSCRIBE_PROXY_TIMEOUT?.trim();
  const timeoutMs = timeout ? parseDuration(timeout, 'SHOAL_SUBSCRIBE_PROXY_TIMEOUT') : fromApp?.timeoutMs;
  if (timeoutMs !== undefined && timeoutMs < 1)
    throw new ConfigError('SHOAL_SUBSCRIBE_PROXY_TIMEOUT must be at least 1ms');
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
  const url = env.SHOAL_RPC_PROXY_URL?.trim() || fromApp?.url;
  if (!url) {
    if (env.SHOAL_RPC_PROXY_TIMEOUT) {
      throw new ConfigError('SHOAL_RPC_PROXY_TIMEOUT needs SHOAL_RPC_PROXY_URL, the app URL to ask');
    }
    return undefined;
  }
  if (!/^https?:\/\/\S+$/.test(url)) {
    throw new ConfigError(`SHOAL_RPC_PROXY_URL must be an http(s) URL of the app, got ${JSON.stringify(url)}`);
  }
  const timeout = env.SHOAL_RPC_PROXY_TIMEOUT?.trim();
  const timeoutMs = timeout ? parseDuration(timeout, 'SHOAL_RPC_PROXY_TIMEOUT') : fromApp?.timeoutMs;
  if (timeoutMs !== undefined && timeoutMs < 1) throw new ConfigError('SHOAL_RPC_PROXY_TIMEOUT must be at least 1ms');
  return {
    url,
    ...(fromApp?.headers ? { headers: fromApp.headers } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  };
}
