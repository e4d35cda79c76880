/**
 * The client ⇄ gateway protocol: JSON text frames over WebSocket (and, server
 * to client only, SSE events). Shared by the gateway and the browser SDK, so
 * this file imports nothing from Node.
 */
import { isValidChannel } from './channels.js';
import { type Cursor, parseCursor } from './cursor.js';
import { isRequestType, parseRequest, type ReplyMessage, type RequestMessage } from './requests.js';

/** Close codes a client may see. 4xxx are shoal's own (the RFC 6455 private range). */
export const CloseCode = {
  /** Gateway is draining for a restart or deploy: reconnect (to another gateway) and resume. */
  Restart: 1012,
  /** Message over the inbound size limit (ws sends it). */
  TooBig: 1009,
  /** The session ended (logout, destroy, rotation, expiry): do not reconnect with it. */
  SessionEnded: 4001,
  /**
   * No valid session on the handshake cookie. The gateway accepts the handshake only to close it
   * with this code: a refused handshake would reach the page as 1006, indistinguishable from a
   * network failure. Do not reconnect: sign in, then connect again.
   */
  Unauthorized: 4401,
  /**
   * Too many connections for this session or this user on this gateway (limits are per gateway
   * process). Reconnect with backoff: a slot frees up when another tab or stream closes.
   */
  TooManyConnections: 4429,
  /** The per-connection send queue overflowed: the client is too slow. Reconnect and resume. */
  SlowConsumer: 4008,
  /** Too many messages per second from this client. */
  RateLimited: 4029,
  /** Heartbeat not answered in time. */
  Timeout: 4000,
  /** The client sent a binary frame, which is not this protocol (a text frame it cannot use is answered with `error`). */
  ProtocolError: 4400,
  /**
   * The app disconnected this connection from the server side (`publisher.disconnect`, or
   * `POST /disconnect`). Do not reconnect. Apps may choose their own code in 4500–4999 instead,
   * with the same meaning, or 1012 to have the client reconnect at once.
   */
  Disconnected: 4403,
  /**
   * The connection token was refused: not a JWT, unsigned (`alg: none`), an algorithm the gateway
   * does not accept, a wrong signature, a wrong audience or issuer, a missing `sub`, or a refresh
   * for another user. Do not reconnect with it.
   */
  TokenInvalid: 4410,
  /**
   * The connection token expired (at the handshake, or while the connection was open and no fresh
   * token came in time). The SDK gets a new one from `getToken()` and reconnects; without it, ends.
   */
  TokenExpired: 4411,
  /**
   * What authenticates connections could not answer (the JWKS URL, the app's connect proxy: down,
   * slow, or an answer that is not the documented JSON). Reconnect with backoff.
   */
  AuthUnavailable: 4013,
} as const;

/** Codes an app may close connections with from the server side: the client does not reconnect after them (but after 1012). */
export function isAppCloseCode(code: number): boolean {
  return code === CloseCode.Disconnected || code === CloseCode.Restart || (code >= 4500 && code <= 4999);
}

/** Close codes after which a client must not reconnect on its own. */
export function isFinalCloseCode(code: number): boolean {
  return (
    code === CloseCode.SessionEnded ||
    code === CloseCode.Unauthorized ||
    code === CloseCode.Disconnected ||
    code === CloseCode.TokenInvalid ||
    code === CloseCode.TokenExpired ||
    (code >= 4500 && code <= 4999)
  );
}

export type { Cursor } from './cursor.js';

export type ClientMessage =
  /** Join a channel; with `from`, replay everything after it (or get recovered:false). */
  /** With `token`, a subscription token (claim `channel`) grants the channel instead of `authorize`. */
  | { type: 'sub'; channel: string; from?: Cursor; token?: string }
  | { type: 'unsub'; channel: string }
  /** Ask for a channel's presence list. */
  | { type: 'presence'; channel: string }
  | { type: 'ping'; id?: number }
  /** A fresh connection token for a connection opened with one, sent before the old one expires. */
  | { type: 'refresh'; token: string }
  /** `rpc`, `pub`, `history`: each answered by one `reply` with its `id` (requests.ts). */
  | RequestMessage;

export type ServerMessage =
  /**
   * `session` is a hash of the session id, null for a connection opened with a token; `expires`
   * (seconds since the epoch) is when its token expires, absent without one. `starts`: for each
   * channel the connection joins without a cursor (`channels=`, its own `session:`/`user:`
   * channels), where delivery starts: the client's cursor from now on, so a reconnect or an SSE
   * reopen before that channel's `subscribed` resumes from there instead of starting it afresh.
   */
  | {
      type: 'hello';
      gateway: string;
      user: string | null;
      session: string | null;
      channels: string[];
      expires?: number;
      starts?: Record<string, Cursor>;
    }
  /** The answer to `refresh`: the connection now lives until `expires` (seconds since the epoch). */
  | { type: 'refreshed'; expires: number }
  | { type: 'msg'; channel: string; epoch: string; offset: number; event: string; data: unknown }
  /**
   * The answer to `sub`. recovered:true — every message after `from` was (or is being) replayed
   * in order; recovered:false — the gap cannot be filled (history window or epoch changed):
   * reload the channel's state, then continue from `epoch`/`offset`.
   */
  | { type: 'subscribed'; channel: string; epoch: string; offset: number; recovered: boolean }
  /**
   * The answer to `unsub`; with `reason`, the server removed the connection from the channel: do not
   * rejoin on your own, except after "token expired", with a fresh subscription token.
   */
  | { type: 'unsubscribed'; channel: string; reason?: string }
  /**
   * Everyone in the channel; on a change, also who `joined` and who `left` since the last list
   * (absent on the answer to `presence`, which starts the list).
   */
  | { type: 'presence'; channel: string; users: string[]; joined?: string[]; left?: string[] }
  | { type: 'error'; code: string; message: string; channel?: string }
  | { type: 'pong'; id?: number }
  | ReplyMessage;

/**
 * Parses one client frame; returns an error string instead of throwing (bad input is routine),
 * with the frame's `id` when it was a request that can be answered with a `reply`.
 */
export function parseClientMessage(text: string): ClientMessage | { error: string; id?: number; channel?: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { error: 'frame is not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { error: 'frame is not a JSON object' };
  const m = raw as Record<string, unknown>;
  switch (m.type) {
    case 'sub': {
      if (!isValidChannel(m.channel)) return { error: 'sub needs a valid channel name', ...named(m.channel) };
      if (m.token !== undefined && !isTokenText(m.token)) return { error: TOKEN_RULE };
      const token = m.token === undefined ? {} : { token: m.token as string };
      if (m.from === undefined) return { type: 'sub', channel: m.channel, ...token };
      const from = parseCursor(m.from);
      if (!from) return { error: 'sub.from must be { epoch: string, offset: non-negative integer }' };
      return { type: 'sub', channel: m.channel, from, ...token };
    }
    case 'unsub':
    case 'presence':
      if (!isValidChannel(m.channel)) return { error: `${m.type} needs a valid channel name`, ...named(m.channel) };
      return { type: m.type, channel: m.channel };
    case 'ping':
      return Number.isSafeInteger(m.id) ? { type: 'ping', id: m.id as number } : { type: 'ping' };
    case 'refresh':
      return isTokenText(m.token) ? { type: 'refresh', token: m.token } : { error: TOKEN_RULE };
    default:
      if (isRequestType(m.type)) return parseRequest(m);
      return { error: `unknown message type ${JSON.stringify(String(m.type)).slice(0, 40)}` };
  }
}

/** The channel a refused frame named, when it is a string of a sane length: the client can tell which frame it was. */
function named(channel: unknown): { channel?: string } {
  return typeof channel === 'string' && channel.length <= 1000 ? { channel } : {};
}

const MAX_TOKEN = 8192;
const TOKEN_RULE = `token must be a JWT (compact form, at most ${MAX_TOKEN} characters)`;

/** The shape of a compact JWT, checked before any verification so junk costs nothing. */
export function isTokenText(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_TOKEN && /^[\w-]*\.[\w-]*\.[\w-]*$/.test(value);
}

/** SSE Last-Event-ID carries every channel's cursor: base64url(JSON {channel: [epoch, offset]}). */
export function encodeCursors(cursors: Map<string, Cursor>): string {
  // No prototype: a channel named "__proto__" (valid) must become a key, not replace the prototype.
  const obj: Record<string, [string, number]> = Object.create(null);
  for (const [ch, c] of cursors) obj[ch] = [c.epoch, c.offset];
  return base64url(JSON.stringify(obj));
}

export function decodeCursors(text: string | undefined): Map<string, Cursor> {
  const out = new Map<string, Cursor>();
  if (!text || text.length > 16_384) return out;
  try {
    const obj = JSON.parse(fromBase64url(text)) as Record<string, unknown>;
    for (const [ch, v] of Object.entries(obj)) {
      if (!isValidChannel(ch) || !Array.isArray(v)) continue;
      const [epoch, offset] = v as unknown[];
      if (typeof epoch === 'string' && Number.isSafeInteger(offset) && (offset as number) >= 0) {
        out.set(ch, { epoch, offset: offset as number });
      }
    }
  } catch {}
  return out;
}

function base64url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64url(text: string): string {
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}
