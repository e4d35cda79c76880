import { ConfigError } from '../core/errors.js';
import type { ClientOptions } from './types.js';

/**
 * Plain JavaScript reaches connect() with options TypeScript would refuse, and the SDK read them
 * quietly: an unknown transport ('SSE', 'ws') meant WebSocket, a string where a number goes made
 * NaN timers or a fallback that never comes. Such a value fails at connect() instead.
 */
export function checkOptions(o: ClientOptions): void {
  const t = o.transport;
  if (t !== undefined && t !== 'auto' && t !== 'websocket' && t !== 'sse') {
    refuse('transport', t, "'websocket', 'sse' or 'auto'");
  }
  for (const name of ['sseAfterFailures', 'pingMs', 'sseTimeoutMs'] as const) number(name, o[name]);
  for (const name of ['base', 'cap', 'stableMs'] as const) number(`backoff.${name}`, o.backoff?.[name]);
}

function number(name: string, value: unknown): void {
  if (value !== undefined && !Number.isFinite(value)) refuse(name, value, 'a number, or leave it out');
}

function refuse(name: string, value: unknown, use: string): never {
  const shown = typeof value === 'string' ? `"${value}"` : String(value);
  throw new ConfigError(`connect(): options.${name} is ${shown}; use ${use}`);
}
