import type { IncomingMessage } from 'node:http';
import { isValidChannel } from '../protocol/channels.js';
import { CloseCode } from '../protocol/messages.js';
import { NO_ATTRIBUTES } from '../session/attribute-values.js';
import { type AppCallFailure, forwardedHeaders, postToApp } from './app-call.js';
import { checkConnectionInfo } from './connection-info.js';
import type { Identity } from './identity.js';

/**
 * The app authenticates handshakes itself: the gateway POSTs the handshake's Cookie header and the
 * allowlisted headers to `url` and reads who it is. Any backend (Java, PHP, Python, CFML) can answer.
 */
export interface ConnectProxyOptions {
  url: string;
  /** Request headers forwarded besides Cookie (lower-case names), e.g. ["authorization", "user-agent"]. */
  headers?: string[];
  /** How long the app may take; then the handshake closes with 4013 (default 3000 ms). No retries. */
  timeoutMs?: number;
}

/** What the proxy answered: who connects, a refusal with the app's close code, or no usable answer. */
export type ProxyVerdict =
  | { identity: Identity }
  | { refused: { code: number; reason: string } }
  | { failed: AppCallFailure };

export async function askConnectProxy(
  o: ConnectProxyOptions,
  req: IncomingMessage,
  transport: 'ws' | 'sse',
): Promise<ProxyVerdict> {
  const got = await postToApp(o.url, forwardedHeaders(req, o.headers ?? []), { transport }, o.timeoutMs ?? 3000);
  if ('failed' in got) return got;
  const body = got.body;
  return verdictOf(body);
}

function verdictOf(body: unknown): ProxyVerdict {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { failed: 'malformed' };
  const b = body as Record<string, unknown>;
  if (b.error !== undefined) {
    const e = b.error as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null) return { failed: 'malformed' };
    const code =
      Number.isInteger(e.code) && (e.code as number) >= 4500 && (e.code as number) <= 4999
        ? (e.code as number)
        : CloseCode.Unauthorized;
    return { refused: { code, reason: typeof e.reason === 'string' ? e.reason.slice(0, 120) : 'refused by the app' } };
  }
  const user = b.user;
  if (user !== null && (typeof user !== 'string' || user === '')) return { failed: 'malformed' };
  const channels = b.channels ?? [];
  if (!Array.isArray(channels) || !channels.every(isValidChannel)) return { failed: 'malformed' };
  const info = checkConnectionInfo(b.info);
  if ('error' in info) return { failed: 'malformed' };
  const session = b.session ?? null;
  if (session !== null && (typeof session !== 'string' || session === '')) return { failed: 'malformed' };
  return {
    identity: {
      source: 'proxy',
      sessionId: null,
      userId: user,
      attributes: NO_ATTRIBUTES,
      granted: channels,
      expiresAt: null,
      info: info.info,
      ...(session !== null ? { appSession: session } : {}),
    },
  };
}
