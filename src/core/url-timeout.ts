import { nearestName } from './did-you-mean.js';
import { parseDuration } from './duration.js';
import { ConfigError } from './errors.js';

/**
 * Every query parameter a store or bus URL of shoal's takes (each driver reads its own; the rest of
 * the query goes to the client library). One within two edits of these is taken for a typo of it.
 */
const SHOAL_URL_PARAMS = [
  'timeout',
  'waitReplicas',
  'waitTimeout',
  'sentinelUsername',
  'sentinelPassword',
  'replicas',
  'noRandomize',
  'partitions',
];

/**
 * Splits `timeout=<duration>` off a store's (or a bus's) URL query. Only that parameter is removed,
 * and the rest of the URL is left byte for byte as it was, so drivers see exactly what they would
 * have without it.
 */
export function takeTimeout(url: string, what: 'store' | 'bus' = 'store'): { url: string; timeoutMs?: number } {
  const q = url.indexOf('?');
  if (q < 0) return { url };
  const params = url.slice(q + 1).split('&');
  for (const param of params) {
    // A misspelt setting would reach the driver, which ignores it: the default would apply unsaid
    // (?waitReplica=1 would drop the replica wait, ?tiemout=2s the timeout).
    const name = param.split('=', 1)[0] ?? '';
    if (SHOAL_URL_PARAMS.includes(name)) continue;
    const near = nearestName(name, SHOAL_URL_PARAMS);
    if (near)
      throw new ConfigError(`the ${what} URL's ?${name}= is not a setting shoal reads; did you mean ?${near}=?`);
  }
  const keep = params.filter((p) => !p.startsWith('timeout='));
  if (keep.length === params.length) return { url };
  const value = decodeURIComponent(params.find((p) => p.startsWith('timeout='))?.slice('timeout='.length) ?? '');
  const timeoutMs = parseDuration(value, `the ${what} URL's ?timeout=`);
  if (timeoutMs <= 0) throw new ConfigError(`the ${what} URL's ?timeout= must be above 0, e.g. ?timeout=2s`);
  return { url: url.slice(0, q) + (keep.length ? `?${keep.join('&')}` : ''), timeoutMs };
}
