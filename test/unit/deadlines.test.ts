import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { DeadlineQueue } from '../../src/core/deadlines.js';

/** The deadlines every Redis and memcached store call waits under: one timer for all of them. */
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('DeadlineQueue', () => {
  it('expires a call once its time has passed, never before, and a settled call never', async () => {
    const q = new DeadlineQueue(60);
    const expired: Array<[string, number]> = [];
    const t0 = performance.now();
    const a = q.add(() => expired.push(['a', performance.now() - t0]));
    await sleep(20);
    const b = q.add(() => expired.push(['b', performance.now() - t0]));
    const c = q.add(() => expired.push(['c', performance.now() - t0]));
    q.settle(b);
    await sleep(150);
    expect(expired.map(([name]) => name)).toEqual(['a', 'c']);
    expect(expired[0]?.[1]).toBeGreaterThanOrEqual(59);
    expect(expired[1]?.[1]).toBeGreaterThanOrEqual(79); // c came 20 ms later: its own deadline, not a's
    expect([a.done, b.done, c.done]).toEqual([true, true, true]);
    q.settle(a); // settling an expired call does nothing
    expect(expired).toHaveLength(2);
  });

  it('holds no timer once nothing waits, whatever order calls settle in', async () => {
    const before = timers();
    const q = new DeadlineQueue(10_000);
    const calls = Array.from({ length: 1000 }, () => q.add(() => expect.fail('expired')));
    expect(timers()).toBe(before + 1); // one timer for a thousand calls
    for (let i = 1; i < calls.length; i += 2) q.settle(calls[i] as (typeof calls)[number]); // out of order first
    for (let i = 0; i < calls.length; i += 2) q.settle(calls[i] as (typeof calls)[number]);
    expect(timers()).toBe(before);
    q.add(() => {});
    expect(timers()).toBe(before + 1);
  });

  it('keeps calls added or settled by an expiring one', async () => {
    const q = new DeadlineQueue(30);
    const seen: string[] = [];
    let late: ReturnType<DeadlineQueue['add']> | undefined;
    q.add(() => {
      seen.push('first');
      q.settle(other); // due at the same time, but no longer waited for
      late = q.add(() => seen.push('late'));
    });
    const other = q.add(() => seen.push('other'));
    await sleep(20);
    expect(seen).toEqual([]);
    await sleep(30);
    expect(seen).toEqual(['first']);
    expect(late?.done).toBe(false);
    await sleep(60);
    expect(seen).toEqual(['first', 'late']);
  });
});
