import { newSessionId } from '../../src/core/ids.js';
import type { StoredSession } from '../../src/stores/contract.js';

const HOUR = 3_600_000;

/**
 * A fresh session record as a store receives it on create(): live for an hour idle, two
 * absolute. No vitest import, so child processes of a test can use it too.
 */
export function sessionFixture(
  over: Partial<StoredSession['meta']> = {},
  attributes: Record<string, string> = {},
): StoredSession {
  const now = Date.now();
  return {
    id: newSessionId(),
    meta: {
      createdAt: now,
      lastSeenAt: now,
      idleDeadline: now + HOUR,
      absoluteDeadline: now + 2 * HOUR,
      userId: null,
      rev: 1,
      ...over,
    },
    attributes,
  };
}
