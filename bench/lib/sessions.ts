import { newSessionId } from '../../src/core/ids.js';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { createStore } from '../../src/stores/index.js';
import { mapLimit } from './client.js';
import { BENCH_SECRET } from './impls.js';

export interface BenchSession {
  id: string;
  userId: string | null;
  /** `Cookie` header value a gateway (same secret, plain-HTTP cookie name) accepts. */
  cookie: string;
}

export interface SessionBatch {
  store: SessionStore;
  sessions: BenchSession[];
  /** Removes them without end events (and closes the store). */
  destroy(): Promise<void>;
}

/**
 * Writes `count` sessions straight into the store, as a login would have left them, and
 * signs their cookies: thousands of browsers without thousands of login requests.
 * `deadline(i)` sets each idle deadline (default: an hour away).
 */
export async function createSessions(
  storeUrl: string,
  count: number,
  o: { namespace?: string; userPrefix?: string | null; deadline?: (i: number) => number } = {},
): Promise<SessionBatch> {
  const store = await createStore(storeUrl, o.namespace ? { namespace: o.namespace } : {});
  // Only for signing: no sweeper, nothing else runs.
  const manager = new SessionManager({
    store,
    secrets: [BENCH_SECRET],
    cookie: { secure: false },
    sweep: { enabled: false },
  });
  const now = Date.now();
  const sessions = await mapLimit(
    Array.from({ length: count }, (_, i) => i),
    64,
    async (i): Promise<BenchSession> => {
      const id = newSessionId();
      const userId = o.userPrefix === null ? null : `${o.userPrefix ?? 'u'}${i}`;
      const ok = await store.create({
        id,
        meta: {
          createdAt: now,
          lastSeenAt: now,
          idleDeadline: o.deadline?.(i) ?? now + 3_600_000,
          absoluteDeadline: now + 7_200_000,
          userId,
          rev: 1,
        },
        attributes: { userId: JSON.stringify(userId) },
      });
      if (!ok) throw new Error(`session ${i}: the store refused to create it`);
      return { id, userId, cookie: `${manager.cookieName}=${manager.sign(id)}` };
    },
  );
  await manager.close();
  return {
    store,
    sessions,
    async destroy() {
      await mapLimit(sessions, 64, (s) => store.destroy(s.id, Date.now(), { silent: true }));
      await store.close();
    },
  };
}
