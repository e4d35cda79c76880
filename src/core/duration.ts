import { ConfigError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses "250ms", "2s", "30m", "12h", "7d"; a number (in code) is milliseconds. Text needs its unit
 * ("0" aside): a bare "5" from an environment variable or a flag could mean 5 ms or 5 s, and read as
 * milliseconds it would end every session at once. Throws a ConfigError naming the setting.
 */
export function parseDuration(value: string | number, setting = 'duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value;
    throw new ConfigError(`${setting} must be a non-negative number of milliseconds, got ${value}`);
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(String(value));
  if (!match) {
    throw new ConfigError(
      `${setting} "${value}" is not a duration: write a number with a unit, e.g. 500ms, 2s, 30m, 12h, 7d`,
    );
  }
  const amount = Number(match[1]);
  const unit = match[2];
  if (unit === undefined) {
    if (amount === 0) return 0;
    const n = match[1];
    throw new ConfigError(
      `${setting} "${value.trim()}" has no unit: write ${n}s, ${n}m or ${n}ms (units ms, s, m, h, d)`,
    );
  }
  return Math.round(amount * (UNITS[unit] ?? 1));
}

/**
 * parseDuration for a setting where 0 means nothing works (a session idle timeout of 0 ends every
 * session as it starts, and its first write then fails): refused at start, naming the setting.
 */
export function parsePositiveDuration(value: string | number, setting: string, example: string): number {
  const ms = parseDuration(value, setting);
  if (ms > 0) return ms;
  throw new ConfigError(`${setting} must be longer than 0 (got ${JSON.stringify(value)}), e.g. ${example}`);
}
