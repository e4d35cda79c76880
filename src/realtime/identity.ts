import type { SessionValues } from '../session/attribute-values.js';

/**
 * Who a connection belongs to, however the handshake proved it: shoal's session cookie, or a
 * signed connection token. Everything after the handshake (limits, channels, access, control)
 * reads this, not the proof.
 */
export interface Identity {
  /** How the handshake was authenticated. */
  readonly source: 'cookie' | 'token' | 'proxy';
  /** The shoal session the connection lives in (cookie); null for a token, which has none. */
  readonly sessionId: string | null;
  readonly userId: string | null;
  /** The session's attributes as values, decoded on first read (attribute-values.ts); empty without a session. */
  readonly attributes: Readonly<Record<string, unknown>>;
  /** Channels the credential itself grants (a token's `channels` claim): joined on request without `authorize`. */
  readonly granted: readonly string[];
  /** When the credential stops being valid (ms since the epoch); null when only the session's end ends it. */
  readonly expiresAt: number | null;
  /** What the connection shows others in presence answers (see connection-info.ts); null for nothing. */
  readonly info: unknown;
  /**
   * The app's own session id, when a connect proxy's answer named one: `{session}` control commands
   * (disconnect, unsubscribe) reach the connection by it as they reach a cookie connection by its shoal session.
   */
  readonly appSession?: string;
}

export function sessionIdentity(session: SessionValues): Identity {
  return {
    source: 'cookie',
    sessionId: session.id,
    userId: session.userId,
    attributes: session.attributes,
    granted: [],
    expiresAt: null,
    info: null,
  };
}
