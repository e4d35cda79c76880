import { ConfigError } from '../core/errors.js';
import type { ClientOptions } from './types.js';

/**
 * Plain JavaScript reaches connect() with options TypeScript would refuse, and the SDK read them
 * quietly: an unknown transport ('SSE', 'ws') meant WebSocket, a string where a number goes made
 * NaN timers or a fallback that never comes. Such a value fails at connect() instead.
 */
export function checkOptions(o: ClientOptions): void {
  if (typeof o !== 'object' || o === null) refuse('', o, "an object, e.g. connect('/ws', { transport: 'auto' })");
  const t = o.transport;
  if (t !== undefined && t !== 'auto' && t !== 'websocket' && t !== 'sse') {
    refuse('transport', t, "'websocket', 'sse' or 'auto'");
  }
  for (const name of ['sseAfterFailures', 'pingMs', 'sseTimeoutMs'] as const) number(name, o[name]);
  if (o.backoff !== undefined && (typeof o.backoff !== 'object' || o.backoff === null)) {
    refuse('backoff', o.backoff, '{ base, cap, stableMs } in ms, or leave it out');
  }
  for (const name of ['base', 'cap', 'stableMs'] as const) number(`backoff.${name}`, o.backoff?.[name]);
  for (const name of ['token', 'sseUrl'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'string') refuse(name, o[name], 'a string, or leave it out');
  }
  for (const name of ['getToken', 'WebSocket', 'EventSource', 'random', 'fetch'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'function') refuse(name, o[name], 'a function, or leave it out');
  }
}

function number(name: string, value: unknown): void {
  if (value !== undefined && !Number.isFinite(value)) refuse(name, value, 'a number, or leave it out');
}

function refuse(name: string, value: unknown, use: string): never {
  const shown =
    typeof value === 'string' ? `"${value}"` : typeof value === 'object' && value ? 'an object' : String(value);
  throw new ConfigError(`connect(): options${name ? `.${name}` : ''} is ${shown}; use ${use}`);
}
