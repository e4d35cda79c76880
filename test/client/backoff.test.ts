import { describe, expect, it } from 'vitest';
import { Backoff, fullJitter } from '../../src/client/backoff.js';

describe('full-jitter backoff', () => {
  it('sleeps uniformly in [0, min(cap, base·2^attempt))', () => {
    const base = 100;
    const cap = 5000;
    for (let attempt = 0; attempt < 12; attempt++) {
      const window = Math.min(cap, base * 2 ** attempt);
      expect(fullJitter(attempt, base, cap, () => 0)).toBe(0);
      expect(fullJitter(attempt, base, cap, () => 0.5)).toBe(Math.floor(window / 2));
      expect(fullJitter(attempt, base, cap, () => 0.999_999)).toBe(Math.floor(window * 0.999_999));
      expect(fullJitter(attempt, base, cap, () => 0.999_999)).toBeLessThan(window);
    }
    expect(fullJitter(6, base, cap, () => 0.999_999)).toBe(4999); // 6400 capped at 5000
    expect(fullJitter(5000, base, cap, () => 0.5)).toBe(2500); // no overflow to NaN/Infinity
  });

  it('stays within bounds for any random value', () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const b = new Backoff({ base: 250, cap: 8000 }, random);
    for (let i = 0; i < 200; i++) {
      const window = Math.min(8000, 250 * 2 ** i);
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(window);
    }
  });

  it('grows per failure, resets after a stable connection, and keeps "prompt" in the first window', () => {
    const b = new Backoff({ base: 100, cap: 1000, stableMs: 5000 }, () => 0.999);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([99, 199, 399, 799, 999]);
    expect(b.prompt()).toBe(99);
    b.reset();
    expect(b.next()).toBe(99);
    expect(b.stableMs).toBe(5000);
  });

  it('ignores nonsense options', () => {
    const b = new Backoff({ base: -1, cap: Number.NaN, stableMs: 0 });
    expect(b.base).toBe(500);
    expect(b.cap).toBe(30_000);
    expect(b.stableMs).toBe(10_000);
    expect(new Backoff({ base: 2000, cap: 100 }).cap).toBe(2000); // cap never below base
  });
});
