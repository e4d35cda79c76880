import { ConfigError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';

/**
 * Cross-site WebSocket hijacking defence: a browser always sends Origin on a
 * WebSocket handshake, and it must match an allowed origin exactly (scheme,
 * host, port). "*" allows any origin (development only).
 */
export function checkOrigin(origin: string | undefined, allowed: readonly string[], required: boolean): boolean {
  if (origin === undefined) return !required;
  if (allowed.includes('*')) return true;
  const normalized = normalizeOrigin(origin);
  // Browsers send the canonical serialization; any other spelling (case, default port, slash) is not a browser.
  if (!normalized || normalized !== origin) return false;
  return allowed.some((a) => normalizeOrigin(a) === normalized);
}

export function normalizeOrigin(value: string): string | null {
  if (value === 'null' || value.length > 300) return null;
  try {
    const u = new URL(value);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) return null;
    return u.origin.toLowerCase();
  } catch {
    return null;
  }
}

/**
 * What to do about one entry of an allowed-origins setting that no browser ever sends as its Origin
 * (no handshake could match it); undefined when the entry is fine: "*", or an origin in any spelling
 * normalizeOrigin reads (a trailing slash, upper case, a default port).
 */
function originFix(value: string): string | undefined {
  if (value === '*') return undefined;
  // Origins are compared whole; a pattern would parse as a host named "*.example.com" and match nothing.
  if (value.includes('*'))
    return 'list each origin on its own: they are matched exactly, and only "*" alone allows any';
  if (normalizeOrigin(value) !== null) return undefined;
  const sent = asBrowserSends(value);
  return sent
    ? `write it as the browser sends it: ${sent}`
    : 'write it as scheme://host[:port] with no path, e.g. https://app.example.com';
}

/** The Origin a browser would send for a page at `value`, when `value` plainly names one (a URL, or a host without its scheme). */
function asBrowserSends(value: string): string | undefined {
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value);
  // Without a scheme: a port or a loopback host is a development server, spoken to over plain HTTP.
  const scheme = /:\d+$|^(localhost|127\.|\[::1\])/i.test(value) ? 'http' : 'https';
  let url: URL;
  try {
    url = new URL(hasScheme ? value : `${scheme}://${value}`);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) return undefined;
  // A single word ("not-a-url") is no host a page is served from; localhost and addresses are.
  if (!/[.:]/.test(url.hostname) && url.hostname !== 'localhost') return undefined;
  return url.origin;
}

/**
 * The one-line problem of an allowed-origins setting (`setting` names it: SHOAL_ORIGINS, origins, …)
 * when some of its entries no browser sends, for `shoal doctor` to report and the gateway to refuse
 * alike: what is wrong and the fix. undefined when every entry is fine.
 */
export function originsProblem(values: readonly string[], setting: string): { what: string; fix: string } | undefined {
  // From plain JavaScript: one origin given as a string would otherwise fail here on flatMap.
  if (!Array.isArray(values)) {
    const single = typeof values === 'string' ? `['${values}']` : "['https://app.example.com']";
    return { what: `${setting} must be a list of origins, not ${kindOf(values)}`, fix: `pass ${single}` };
  }
  const notText = values.findIndex((value) => typeof value !== 'string');
  if (notText !== -1) {
    return {
      what: `${setting} holds ${kindOf(values[notText])}, not an origin`,
      fix: "list origins as strings, e.g. ['https://app.example.com']",
    };
  }
  const bad = values.flatMap((value) => {
    const fix = originFix(value);
    return fix === undefined ? [] : [{ value, fix }];
  });
  const [first] = bad;
  if (!first) return undefined;
  return {
    what: `${setting} has ${bad.map((b) => `"${b.value}"`).join(', ')}, which no browser sends as an Origin, so no handshake would ever match it`,
    fix: bad.length === 1 ? first.fix : bad.map((b) => `"${b.value}": ${b.fix}`).join('; '),
  };
}

/**
 * The allowed origins a gateway compares with, normalized ("*" kept); a ConfigError naming the entries
 * no browser sends and how to write them, so a gateway never starts only to refuse every handshake.
 */
export function allowedOrigins(values: readonly string[], setting: string): string[] {
  const problem = originsProblem(values, setting);
  if (problem) throw new ConfigError(`${problem.what}; ${problem.fix}`);
  return [...new Set(values.map((v) => (v === '*' ? v : (normalizeOrigin(v) as string))))];
}
