import { postToApp } from './app-call.js';
import type { AuthorizeContext } from './authorize-context.js';
import type { GatewayMetrics } from './gateway-metrics.js';

/** `authorize` as an HTTP call to the app: any backend decides who may join which channel. */
export interface SubscribeProxyOptions {
  url: string;
  /** How long the app may take (default 3000 ms); no retries. */
  timeoutMs?: number;
}

/**
 * An `authorize` hook that POSTs `{ channel, user, source }` to the app and joins when it answers
 * 200 `{ "allow": true }`. Anything else denies: `{ "allow": false }`, and — counted in
 * `shoal_gateway_subscribe_proxy_failures_total{reason}` — a timeout, a connection error, a
 * non-2xx status or a body that is not that JSON. A failed call never opens a channel.
 */
export function subscribeProxyAuthorize(
  o: SubscribeProxyOptions,
  metrics: GatewayMetrics,
): (who: AuthorizeContext, channel: string) => Promise<boolean> {
  const fail = (reason: string) => {
    metrics.subscribeProxyFailures.inc({ reason });
    return false;
  };
  return async (who, channel) => {
    const got = await postToApp(o.url, {}, { channel, user: who.userId, source: who.source }, o.timeoutMs ?? 3000);
    if ('failed' in got) return fail(got.failed);
    const body = got.body;
    const allow = (body as { allow?: unknown } | null)?.allow;
    if (typeof allow !== 'boolean') return fail('malformed');
    return allow;
  };
}
