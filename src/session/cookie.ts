/** Browsers cap a cookie at 4096 bytes; anything longer was not set by us. */
export const MAX_COOKIE_VALUE = 4096;

/**
 * The values of every cookie called `name` in a Cookie header. More than one
 * means someone planted a second cookie (e.g. from a sibling subdomain), and
 * the caller must trust neither.
 *
 * Read in place: browsers send every cookie of the site on every request (analytics, preferences, …),
 * and splitting the header made an array and two trimmed strings per cookie, on every session request.
 * Names and values are trimmed as String.prototype.trim does.
 */
export function readCookie(header: string | undefined, name: string): readonly string[] {
  if (!header) return NONE;
  let found: string[] | undefined;
  for (let start = 0; start < header.length; ) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq >= 0 && eq < end) {
      let from = start;
      let to = eq;
      while (from < to && isSpace(header.charCodeAt(from))) from++;
      while (to > from && isSpace(header.charCodeAt(to - 1))) to--;
      if (to - from === name.length && header.startsWith(name, from)) {
        from = eq + 1;
        to = end;
        while (from < to && isSpace(header.charCodeAt(from))) from++;
        while (to > from && isSpace(header.charCodeAt(to - 1))) to--;
        // A quoted value loses its quotes (RFC 6265 allows them); a lone quote is kept as it is.
        if (to - from >= 2 && header.charCodeAt(from) === QUOTE && header.charCodeAt(to - 1) === QUOTE) {
          from++;
          to--;
        }
        // One value is the usual case: an array made for it holds one slot, where [] then push() holds 17.
        if (found) found.push(header.slice(from, to));
        else found = [header.slice(from, to)];
      }
    }
    start = end + 1;
  }
  return found ?? NONE;
}

const QUOTE = 0x22;
const NONE: readonly string[] = Object.freeze([]);
const SPACE = /\s/;

/** What String.prototype.trim removes (white space and line terminators), without a string per test. */
function isSpace(code: number): boolean {
  if (code === 0x20 || (code >= 0x09 && code <= 0x0d)) return true;
  return code > 0x7f && SPACE.test(String.fromCharCode(code));
}

export interface CookieAttributes {
  secure: boolean;
  sameSite: 'Lax' | 'Strict' | 'None';
  path: string;
  /** Seconds; undefined = a browser-session cookie. */
  maxAge?: number | undefined;
  httpOnly: boolean;
}

/** A Set-Cookie header value. No Domain attribute: the cookie stays on the exact host. */
export function serializeCookie(name: string, value: string, attrs: CookieAttributes): string {
  let out = `${name}=${value}; Path=${attrs.path}`;
  if (attrs.maxAge !== undefined) out += `; Max-Age=${Math.floor(attrs.maxAge)}`;
  if (attrs.httpOnly) out += '; HttpOnly';
  if (attrs.secure) out += '; Secure';
  out += `; SameSite=${attrs.sameSite}`;
  return out;
}

export function clearCookie(name: string, attrs: CookieAttributes): string {
  return `${serializeCookie(name, '', { ...attrs, maxAge: 0 })}; Expires=Thu, 01 Jan 1970 00:00:00 GMT`;
}
