import { createBus, createStore, StoreUnavailableError } from 'shoal';
import { afterAll, describe, expect, it } from 'vitest';
import { type PostgresPair, postgresBinDir, startPostgresPair } from './fixtures/postgres-standby.js';

/**
 * A store and a bus on a PostgreSQL URL naming two hosts, the standby first
 * (`postgres://…@standby,primary/db`): they find the primary, keep working when it is SIGKILLed and
 * the standby promoted (as a failover manager would), and keep what was written before the kill.
 */
const skip = postgresBinDir() ? undefined : 'PostgreSQL server binaries (initdb) are not installed';
if (skip) console.warn(`[skip] ${skip}`);
/** From the promotion to the first write that succeeds again. */
const RECOVERY_BOUND_MS = 5000;

const session = (id: string) => {
  const now = Date.now();
  return {
    id,
    attributes: { n: '1' },
    meta: {
      createdAt: now,
      lastSeenAt: now,
      idleDeadline: now + 600_000,
      absoluteDeadline: now + 3_600_000,
      rev: 1,
      userId: null,
    },
  };
};

describe.skipIf(skip)('failover: PostgreSQL primary and standby on a multi-host URL', () => {
  let pair: PostgresPair | undefined;
  afterAll(async () => {
    await pair?.stop();
  });

  it('writes go to the primary, and to the promoted standby after the primary dies, with nothing acknowledged lost', async () => {
    pair = await startPostgresPair();
    const url = `postgres://postgres@127.0.0.1:${pair.standby.port},127.0.0.1:${pair.primary.port}/postgres?timeout=1000ms`;
    const store = await createStore(url);
    const bus = await createBus(url, { namespace: `pgpair${Date.now()}` });
    try {
      // The standby is listed first and is read-only: a write succeeding means the primary was found.
      expect(await store.create(session('before'))).toBe(true);
      const published = await bus.publish('room:pg', { event: 'e', data: '1' });
      await pair.caughtUp();

      await pair.primary.kill('SIGKILL');
      const killedAt = Date.now();
      // While nothing accepts writes, calls fail as store outages (503 upstream), never hang.
      const during = await store.create(session('during')).then(
        () => 'ok',
        (err: unknown) => err,
      );
      expect(during).toBeInstanceOf(StoreUnavailableError);

      const promoting = Date.now();
      await pair.promote();
      const promotedAt = Date.now();
      let writesBackAt = 0;
      for (let i = 0; i < 200 && Date.now() - promotedAt < RECOVERY_BOUND_MS * 2; i++) {
        const ok = await store.create(session(`after-${i}`)).then(
          () => true,
          () => false,
        );
        if (ok) {
          writesBackAt = Date.now();
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(writesBackAt).toBeGreaterThan(0);
      const before = await store.load('before', Date.now());
      expect(before?.attributes.n).toBe('1');
      // The first call on a connection to the dead primary fails (a 503 upstream); the next finds the new one.
      let next: Awaited<ReturnType<typeof bus.publish>> | undefined;
      for (let i = 0; i < 20 && !next; i++) {
        next = await bus.publish('room:pg', { event: 'e', data: '2' }).catch(() => undefined);
      }
      if (!next) throw new Error('the bus did not publish again after the promotion');
      expect(next.epoch).toBe(published.epoch);
      expect(next.offset).toBe(published.offset + 1);
      console.log(
        `[failover postgres standby] primary SIGKILLed; the promotion (pg_ctl promote -w, started ${promoting - killedAt} ms after the kill) took ${promotedAt - promoting} ms; writes back ${writesBackAt - promotedAt} ms after the promotion; data written before the kill kept; bus offsets continue`,
      );
      expect(writesBackAt - promotedAt).toBeLessThan(RECOVERY_BOUND_MS);
    } finally {
      await bus.close().catch(() => {});
      await store.close().catch(() => {});
    }
  }, 120_000);
});
