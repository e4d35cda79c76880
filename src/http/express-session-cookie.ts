import { createHmac, timingSafeEqual } from 'node:crypto';

/** express-session's `cookie` option, field for field. */
export interface CookieOptions {
  /** Milliseconds; null (default) = a browser-session cookie. */
  maxAge?: number | null;
  expires?: Date | null;
  httpOnly?: boolean;
  /** 'auto': Secure when the request came over HTTPS (see `proxy`). */
  secure?: boolean | 'auto';
  /** true = 'strict'; 'auto': 'none' over HTTPS, 'lax' otherwise. */
  sameSite?: boolean | 'lax' | 'strict' | 'none' | 'auto';
  domain?: string;
  path?: string;
  partitioned?: boolean;
  priority?: 'low' | 'medium' | 'high';
}

/** What a session's cookie looks like in the store (express-session's `cookie.data`). */
export interface StoredCookie {
  originalMaxAge: number | null;
  expires?: string | Date | null | undefined;
  httpOnly?: boolean | undefined;
  secure?: boolean | undefined;
  sameSite?: boolean | 'lax' | 'strict' | 'none' | undefined;
  domain?: string | undefined;
  path?: string | undefined;
  partitioned?: boolean | undefined;
  priority?: 'low' | 'medium' | 'high' | undefined;
}

export const COOKIE_KEYS = new Set([
  'maxAge',
  'expires',
  'httpOnly',
  'secure',
  'sameSite',
  'domain',
  'path',
  'partitioned',
  'priority',
]);

/**
 * `req.session.cookie`: the same object express-session gives (maxAge and expires tied together,
 * originalMaxAge kept for touch()), so code that reads or sets it behaves as before.
 */
export class SessionCookie {
  path = '/';
  httpOnly = true;
  originalMaxAge: number | null = null;
  secure?: boolean | undefined;
  sameSite?: boolean | 'lax' | 'strict' | 'none' | undefined;
  domain?: string | undefined;
  partitioned?: boolean | undefined;
  priority?: 'low' | 'medium' | 'high' | undefined;
  #expires: Date | null = null;

  constructor(options: Omit<CookieOptions, 'secure' | 'sameSite'> & Pick<StoredCookie, 'secure' | 'sameSite'> = {}) {
    // Assigned in the caller's order, as express-session does: the later of maxAge/expires wins.
    for (const [key, value] of Object.entries(options)) {
      if (value === undefined) continue;
      (this as unknown as Record<string, unknown>)[key] = value;
    }
    if (this.originalMaxAge === null || this.originalMaxAge === undefined) this.originalMaxAge = this.maxAge;
  }

  /** A cookie as the store holds it: expires back to a Date, originalMaxAge untouched. */
  static fromStored(data: StoredCookie): SessionCookie {
    const { originalMaxAge, expires, ...rest } = data;
    const cookie = new SessionCookie(rest);
    cookie.expires = typeof expires === 'string' ? new Date(expires) : (expires ?? null);
    cookie.originalMaxAge = originalMaxAge ?? null;
    return cookie;
  }

  get expires(): Date | null {
    return this.#expires;
  }

  set expires(date: Date | null) {
    this.#expires = date;
    this.originalMaxAge = this.maxAge;
  }

  /** Milliseconds left, or null for a browser-session cookie. */
  get maxAge(): number | null {
    return this.#expires instanceof Date ? this.#expires.valueOf() - Date.now() : this.#expires;
  }

  set maxAge(ms: number | null) {
    if (ms !== null && ms !== undefined && typeof ms !== 'number') throw new TypeError('maxAge must be a number');
    this.expires = typeof ms === 'number' ? new Date(Date.now() + ms) : null;
    // The expires setter reads the clock again and can come out a millisecond short (express-session
    // does); kept exact, a touch never looks like a new lifetime that has to be stored.
    this.originalMaxAge = typeof ms === 'number' ? ms : null;
  }

  get data(): StoredCookie {
    return {
      originalMaxAge: this.originalMaxAge,
      partitioned: this.partitioned,
      priority: this.priority,
      expires: this.#expires,
      secure: this.secure,
      httpOnly: this.httpOnly,
      domain: this.domain,
      path: this.path,
      sameSite: this.sameSite,
    };
  }

  toJSON(): StoredCookie {
    return this.data;
  }

  /** The Set-Cookie value, attribute for attribute what express-session (the `cookie` package) writes. */
  serialize(name: string, value: string): string {
    let out = `${name}=${value}`;
    if (this.domain) out += `; Domain=${this.domain}`;
    if (this.path) out += `; Path=${this.path}`;
    if (this.#expires instanceof Date) out += `; Expires=${this.#expires.toUTCString()}`;
    if (this.httpOnly) out += '; HttpOnly';
    if (this.secure) out += '; Secure';
    if (this.partitioned) out += '; Partitioned';
    if (this.priority) out += `; Priority=${this.priority[0]?.toUpperCase()}${this.priority.slice(1)}`;
    const sameSite = this.sameSite === true ? 'strict' : this.sameSite;
    if (sameSite) out += `; SameSite=${sameSite[0]?.toUpperCase()}${sameSite.slice(1)}`;
    return out;
  }
}

/**
 * What a request can change in its session's cookie: everything but `expires`, which touch()
 * sets from originalMaxAge at the end of every request anyway. Equal shapes, equal Set-Cookie.
 */
export function cookieShape(c: SessionCookie): string {
  // An array of the fields rather than the stored object less `expires`: no object copied, no keys written.
  return JSON.stringify([
    c.originalMaxAge,
    c.partitioned,
    c.priority,
    c.secure,
    c.httpOnly,
    c.domain,
    c.path,
    c.sameSite,
  ]);
}

/**
 * The id in a cookie express-session signed (`s:<id>.<mac>`, cookie-signature's HMAC-SHA256), and
 * the secret that signed it, or null. Only used to move sessions an express-session store wrote
 * (`migrateFrom`).
 */
export function unsignLegacy(raw: string, secrets: readonly string[]): { id: string; secret: string } | null {
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (!value.startsWith('s:')) return null;
  const signed = value.slice(2);
  const dot = signed.lastIndexOf('.');
  if (dot < 1) return null;
  const id = signed.slice(0, dot);
  const given = Buffer.from(signed.slice(dot + 1));
  for (const secret of secrets) {
    const mac = Buffer.from(createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, ''));
    if (mac.length === given.length && timingSafeEqual(mac, given)) return { id, secret };
  }
  return null;
}

/**
 * The shoal id an express-session session moves to: the same on every node and for every request
 * that presents the old cookie, so requests racing to move it agree through the store's
 * create-if-absent. Keyed with the secret that signed the old cookie, so only the server can
 * derive it, and only from a cookie it signed; labelled, so it is unrelated to any cookie signature.
 */
export function movedSessionId(legacy: { id: string; secret: string }): string {
  return createHmac('sha256', legacy.secret)
    .update(`shoal/express-session migrateFrom\0${legacy.id}`)
    .digest()
    .subarray(0, 16)
    .toString('base64url');
}
