import { describe, expect, it } from 'vitest';
import { keyedLanes } from '../../src/core/lanes.js';

describe('keyedLanes', () => {
  it('runs one key in order, one at a time, past a failure; other keys run beside it', async () => {
    const lanes = keyedLanes<string>();
    const log: string[] = [];
    let running = 0;
    let most = 0;
    const task =
      (name: string, fail = false) =>
      async (queued: boolean) => {
        running++;
        most = Math.max(most, running);
        log.push(`${name}:${queued ? 'queued' : 'now'}`);
        await new Promise((r) => setTimeout(r, 5));
        running--;
        if (fail) throw new Error(name);
        return name;
      };
    const a1 = lanes('a', task('a1'));
    const a2 = lanes('a', task('a2', true));
    const a3 = lanes('a', task('a3'));
    const b1 = lanes('b', task('b1'));
    expect(await a1).toBe('a1');
    await expect(a2).rejects.toThrow('a2');
    expect(await a3).toBe('a3');
    expect(await b1).toBe('b1');
    expect(log.filter((l) => l.startsWith('a'))).toEqual(['a1:now', 'a2:queued', 'a3:queued']);
    expect(log).toContain('b1:now');
    expect(most).toBe(2); // a and b side by side, never two of a
  });

  it('starts a task on an idle lane at once, and turns a synchronous throw into a rejection', async () => {
    const lanes = keyedLanes<number>();
    let started = false;
    const p = lanes(1, async () => {
      started = true;
    });
    expect(started).toBe(true);
    await p;
    await expect(
      lanes(1, () => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
  });
});
