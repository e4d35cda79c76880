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
