/** Browsers cap a cookie at 4096 bytes; anything longer was not set by us. */
export const MAX_COOKIE_VALUE = 4096;

/**
 * The values of every cookie called `name` in a Cookie header. More than one
 * means someone planted a second cookie (e.g. from a sibling subdomain), and
 * the caller must trust neither.
 */
export function readCookie(header: string | undefined, name: string): string[] {
  if (!header) return [];
  const found: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    found.push(value);
  }
  return found;
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
