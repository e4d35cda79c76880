import { createHash, randomBytes } from 'node:crypto';

/** 128 bits from the CSPRNG, base64url: 22 characters. */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** What logs carry instead of a session id: enough to correlate, useless to hijack. */
export function hashId(id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 12);
}
