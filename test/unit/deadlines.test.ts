import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { DeadlineQueue } from '../../src/core/deadlines.js';
import { ROOT } from '../helpers/processes.js';

/** The deadlines every Redis and memcached store call waits under: one timer for all of them. */

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

  it('puts a thousand waiting calls on one timer, settled in any order', () => {
    const armed = vi.spyOn(globalThis, 'setTimeout');
    try {
      const q = new DeadlineQueue(10_000);
      const calls = Array.from({ length: 1000 }, () => q.add(() => expect.fail('expired')));
      for (let i = 1; i < calls.length; i += 2) q.settle(calls[i] as (typeof calls)[number]); // out of order first
      for (let i = 0; i < calls.length; i += 2) q.settle(calls[i] as (typeof calls)[number]);
      q.add(() => {}); // the timer is still armed: no second one
      expect(armed).toHaveBeenCalledTimes(1);
    } finally {
      armed.mockRestore();
    }
  });

  it('does not keep the process up: the connection a call waits on does that', () => {
    const script = `
      import { DeadlineQueue } from ${JSON.stringify(join(ROOT, 'src/core/deadlines.ts'))};
      const q = new DeadlineQueue(20_000);
      for (let i = 0; i < 10; i++) q.settle(q.add(() => {}));
      q.add(() => console.log('expired'));
      console.log('done');`;
    const started = Date.now();
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(child.stdout.trim(), child.stderr).toBe('done');
    expect(Date.now() - started).toBeLessThan(10_000);
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
