/** A one-cookie jar: enough to act as one browser against shoal nodes. */
export class CookieJar {
  cookie = '';

  /** Applies a response's Set-Cookie headers. */
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const pair = line.split(';')[0] ?? '';
      const [name] = pair.split('=');
      const cleared = /Max-Age=0/i.test(line);
      const others = this.cookie.split('; ').filter((c) => c && !c.startsWith(`${name}=`));
      this.cookie = (cleared ? others : [...others, pair]).join('; ');
    }
  }

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookie) headers.set('cookie', this.cookie);
    const res = await fetch(url, { ...init, headers });
    this.take(res);
    return res;
  }
}
