/**
 * Client frames that ask the gateway something and get exactly one `reply` with the same `id`:
 * `rpc` (a method of the app), `pub` (publish from the client), `history` (a channel's last
 * messages), `clients` (a channel's connections with their info). Shared by the gateway and the SDK, so this file imports nothing from Node.
 */
import { isValidChannel } from './channels.js';
import { type Cursor, parseCursor } from './cursor.js';

export type RequestMessage =
  | { type: 'rpc'; id: number; method: string; data: unknown }
  | { type: 'pub'; id: number; channel: string; event: string; data: unknown }
  | { type: 'history'; id: number; channel: string; limit?: number; since?: Cursor }
  /** Who is in a channel, each connection with the info the app lets it show. */
  | { type: 'clients'; id: number; channel: string };

/** The answer to a request: `result` on success, `error` otherwise (never both). */
export type ReplyMessage =
  | { type: 'reply'; id: number; result: unknown }
  | { type: 'reply'; id: number; error: { code: string; message: string } };

/**
 * Error codes a reply may carry: `not_found` (no such method), `bad_request` (the app refused the
 * input), `forbidden` (publish, history or clients not allowed), `too_big` (frame over the size bound),
 * `rate_limited` (over the per-connection rate or in-flight bound), `unavailable` (the RPC proxy or
 * bus did not answer usably), `internal` (the handler threw), `timeout` (the SDK gave up waiting).
 * An app's own `RpcError` codes pass through as they are.
 */
export const REPLY_CODES = [
  'not_found',
  'bad_request',
  'forbidden',
  'too_big',
  'rate_limited',
  'unavailable',
  'internal',
  'timeout',
] as const;

const MAX_METHOD = 200;
const MAX_EVENT = 200;

export function isRequestType(type: unknown): type is RequestMessage['type'] {
  return type === 'rpc' || type === 'pub' || type === 'history' || type === 'clients';
}

/** Parses a request frame (its `type` already known to be one); an error string instead of a throw. */
export function parseRequest(m: Record<string, unknown>): RequestMessage | { error: string; id?: number } {
  if (!Number.isSafeInteger(m.id)) return { error: `${String(m.type)} needs an integer id` };
  const id = m.id as number;
  switch (m.type) {
    case 'rpc':
      if (typeof m.method !== 'string' || m.method === '' || m.method.length > MAX_METHOD) {
        return { error: `rpc.method must be a non-empty string of at most ${MAX_METHOD} characters`, id };
      }
      return { type: 'rpc', id, method: m.method, data: m.data ?? null };
    case 'pub':
      if (!isValidChannel(m.channel)) return { error: 'pub needs a valid channel name', id };
      if (typeof m.event !== 'string' || m.event === '' || m.event.length > MAX_EVENT) {
        return { error: `pub.event must be a non-empty string of at most ${MAX_EVENT} characters`, id };
      }
      return { type: 'pub', id, channel: m.channel, event: m.event, data: m.data ?? null };
    case 'clients':
      if (!isValidChannel(m.channel)) return { error: 'clients needs a valid channel name', id };
      return { type: 'clients', id, channel: m.channel };
    default:
      return parseHistory(m, id);
  }
}

function parseHistory(m: Record<string, unknown>, id: number): RequestMessage | { error: string; id: number } {
  if (!isValidChannel(m.channel)) return { error: 'history needs a valid channel name', id };
  if (m.limit !== undefined && (!Number.isSafeInteger(m.limit) || (m.limit as number) < 1)) {
    return { error: 'history.limit must be a positive integer', id };
  }
  const out: Extract<RequestMessage, { type: 'history' }> = { type: 'history', id, channel: m.channel };
  if (m.limit !== undefined) out.limit = m.limit as number;
  if (m.since !== undefined) {
    const since = parseCursor(m.since);
    if (!since) return { error: 'history.since must be { epoch: string, offset: non-negative integer }', id };
    out.since = since;
  }
  return out;
}
