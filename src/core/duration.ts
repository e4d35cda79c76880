import { ConfigError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses "250ms", "2s", "30m", "12h", "7d" or a bare number of milliseconds.
 * Throws a ConfigError naming the setting when the text is not a duration.
 */
export function parseDuration(value: string | number, setting = 'duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
    throw new ConfigError(`${setting} must be a non-negative number of milliseconds, got ${value}`);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (!match) {
    throw new ConfigError(
      `${setting} "${value}" is not a duration: write a number with a unit, e.g. 500ms, 2s, 30m, 12h, 7d`,
    );
  }
  const unit = UNITS[match[2] ?? 'ms'] ?? 1;
  return Math.round(Number(match[1]) * unit);
}
