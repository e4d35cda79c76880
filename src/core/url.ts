import { redactUrl } from './redis-client.js';

/** URLs may carry passwords: never echo them into errors or logs. */
export function redact(url: string): string {
  // Several hosts (a cluster's seeds, sentinels) are not one WHATWG URL: mask the userinfo's password as text.
  if (/^[a-z+]+:\/\/[^/?#]*,/i.test(url)) return redactUrl(url);
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return redactUrl(url);
  }
}
