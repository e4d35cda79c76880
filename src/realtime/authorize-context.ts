/** Who asks to join a channel: what `authorize` (or the subscribe proxy) decides on. */
export interface AuthorizeContext {
  /** The shoal session; null for a connection opened with a token. */
  sessionId: string | null;
  userId: string | null;
  /** The session's attributes; empty for a token. */
  attributes: Record<string, string>;
  /** How the connection was authenticated. */
  source: 'cookie' | 'token' | 'proxy';
}
