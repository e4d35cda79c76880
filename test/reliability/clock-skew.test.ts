import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { newSessionId } from '../../src/core/ids.js';
import type { SessionStore, StoredSession } from '../../src/stores/contract.js';
import { createStore } from '../../src/stores/index.js';
import { dropNamespace, networkStores, scratchDir } from './fixture.js';

/**
 * Deadlines are written and checked with the caller's clock (`now` in every store call),
 * so a node whose clock is off moves session ends for the whole cluster. These tests
 * measure it with two clients of one store, "A" on time and "B" 30 s off, and pin down
 * the tolerance documented in docs/reliability.md:
 * - B ahead by s: B refuses a session up to s before its deadline; B's sweeper ends it up
 *   to s early for everyone; a commit on B extends it up to s late. Nothing beyond s.
 * - B behind by s: B still serves a session up to s after its deadline — but only until an
 *   on-time sweeper claims it (every 250 ms by default): the ended flag beats B's clock.
 * Locks are immune: redis and postgres lease them on the server's clock (sqlite: one machine, one clock).
 */
const SKEW = 30_000;
const MINUTE = 60_000;
const scratch = scratchDir('shoal-skew-');
afterAll(() => scratch.remove());

const fixtures: Array<{ name: string; url: string; skip?: string | undefined }> = [
  { name: 'sqlite', url: `sqlite:${join(scratch.dir, 'skew.db')}` },
  ...(await networkStores()),
];

function session(now: number, idleIn: number, userId: string | null = null): StoredSession {
  return {
    id: newSessionId(),
    meta: {
      createdAt: now - MINUTE,
      lastSeenAt: now,
      idleDeadline: now + idleIn,
      absoluteDeadline: now + 60 * MINUTE,
      userId,
      rev: 1,
    },
    attributes: { a: '1' },
  };
}

for (const fixture of fixtures) {
  describe.skipIf(fixture.skip !== undefined)(`clock skew on the ${fixture.name} store`, () => {
    const namespace = `skew-${randomUUID().slice(0, 8)}`;
    const opened: SessionStore[] = [];
    const open = async () => {
      const s = await createStore(fixture.url, { namespace });
      opened.push(s);
      return s;
    };
    afterAll(async () => {
      await Promise.all(opened.map((s) => s.close()));
      await dropNamespace(fixture.url, namespace);
    });
    const claimAll = (store: SessionStore, now: number) =>
      store.claimEnded({ now, limit: 100, leaseMs: 30_000, owner: 'skew-test' });

    it('a node 30 s ahead ends sessions at most 30 s early and extends them at most 30 s, never more', async () => {
      const [a, b] = [await open(), await open()];
      const now = Date.now();
      const ahead = now + SKEW;
      const safe = session(now, 2 * SKEW); // 60 s left: more than the skew
      const close = session(now, SKEW - 10_000); // 20 s left: less than the skew
      expect(await a.create(safe)).toBe(true);
      expect(await a.create(close)).toBe(true);

      // B refuses only what is within the skew of its end; a read changes nothing for A.
      expect((await b.load(safe.id, ahead))?.id).toBe(safe.id);
      expect(await b.load(close.id, ahead)).toBeNull();
      expect((await a.load(close.id, now))?.id).toBe(close.id);

      // B's commit slides the idle deadline from B's clock: up to the skew later than A would have.
      const r = await b.commit(safe.id, { set: { b: '2' } }, { now: ahead, idleDeadline: ahead + 2 * SKEW });
      expect(r.status).toBe('ok');
      const slid = (await a.load(safe.id, now))?.meta.idleDeadline ?? 0;
      expect(slid - (now + 2 * SKEW)).toBe(SKEW);

      // B's sweeper ends the close one early, for everyone; the safe one stays.
      const claimed = (await claimAll(b, ahead)).map((e) => e.snapshot.id);
      expect(claimed).toContain(close.id);
      expect(claimed).not.toContain(safe.id);
      expect(await a.load(close.id, now)).toBeNull();
      expect((await a.load(safe.id, now))?.attributes).toEqual({ a: '1', b: '2' });
      for (const id of claimed) await b.ackEnded(id);
    });

    it('a node 30 s behind serves an ended session only until an on-time sweeper claims it', async () => {
      const [a, b] = [await open(), await open()];
      const now = Date.now();
      const behind = now - SKEW;
      const ended = session(now, -10_000); // its idle deadline passed 10 s ago
      expect(await a.create(ended)).toBe(true);
      expect(await a.load(ended.id, now)).toBeNull();
      // The window: B's clock says it has 20 s left.
      expect((await b.load(ended.id, behind))?.id).toBe(ended.id);
      const claimed = (await claimAll(a, now)).map((e) => e.snapshot.id);
      expect(claimed).toContain(ended.id);
      // Claimed = marked ended in the store: B's clock no longer matters.
      expect(await b.load(ended.id, behind)).toBeNull();
      const write = await b.commit(ended.id, { set: { late: '1' } }, { now: behind, idleDeadline: behind + MINUTE });
      expect(write.status).toBe('gone');
      for (const id of claimed) await a.ackEnded(id);
    });

    // sqlite leases on the caller's clock, but every caller is on the one machine that has the file.
    it.skipIf(fixture.name === 'sqlite')(
      'lock leases use the server clock: a node 30 s ahead cannot take a held lock',
      async () => {
        const [a, b] = [await open(), await open()];
        const s = session(Date.now(), MINUTE);
        expect(await a.create(s)).toBe(true);
        expect(await a.acquireLock(s.id, 'job', 'node-a', 5_000)).not.toBeNull();
        // B's Date runs 30 s ahead (timers stay real, so the drivers work as usual).
        vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + SKEW });
        try {
          expect(await b.acquireLock(s.id, 'job', 'node-b', 5_000)).toBeNull();
        } finally {
          vi.useRealTimers();
        }
        await a.releaseLock(s.id, 'job', 'node-a');
        expect(await b.acquireLock(s.id, 'job', 'node-b', 5_000)).not.toBeNull();
        await a.destroy(s.id, Date.now(), { silent: true });
      },
    );
  });
}
