import { parseDuration } from './duration.js';
import { ConfigError } from './errors.js';

/**
 * Splits `timeout=<duration>` off a store's (or a bus's) URL query. Only that parameter is removed,
 * and the rest of the URL is left byte for byte as it was, so drivers see exactly what they would
 * have without it.
 */
export function takeTimeout(url: string, what: 'store' | 'bus' = 'store'): { url: string; timeoutMs?: number } {
  const q = url.indexOf('?');
  if (q < 0) return { url };
  const params = url.slice(q + 1).split('&');
  const keep = params.filter((p) => !p.startsWith('timeout='));
  if (keep.length === params.length) return { url };
  const value = decodeURIComponent(params.find((p) => p.startsWith('timeout='))?.slice('timeout='.length) ?? '');
  const timeoutMs = parseDuration(value, `the ${what} URL's ?timeout=`);
  if (timeoutMs <= 0) throw new ConfigError(`the ${what} URL's ?timeout= must be above 0, e.g. ?timeout=2s`);
  return { url: url.slice(0, q) + (keep.length ? `?${keep.join('&')}` : ''), timeoutMs };
}
