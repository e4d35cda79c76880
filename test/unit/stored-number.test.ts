import { describe, expect, it } from 'vitest';
import { storedNumber } from '../../src/stores/redis-session.js';

describe('storedNumber: the times and revisions a Redis session hash holds', () => {
  it('reads decimal digits as Number() does', () => {
    for (const text of ['0', '7', '1', '42', '1733333333333', '999999999999999', '000123']) {
      expect(storedNumber(text)).toBe(Number(text));
    }
  });

  it('gives anything else to Number(): signs, fractions, exponents, spaces, long numbers, empty, absent', () => {
    for (const text of ['-5', '+5', '1.5', '1.733e+12', ' 12', '12 ', '1234567890123456789', '', 'x', '0x10']) {
      expect(storedNumber(text)).toBe(Number(text));
    }
    expect(storedNumber(undefined)).toBeNaN();
  });
});
