import type { WebSocket } from 'ws';
import { connect, handshakeStatus } from '../realtime/ws-client.js';

/**
 * The reliability and security tests' view of the one test client (test/realtime/ws-client.ts):
 * raw frames as text, the origin the test gateways allow unless another is given.
 */
export interface Socket {
  ws: WebSocket;
  /** Text of every frame received. */
  frames: string[];
  closed: Promise<{ code: number; reason: string }>;
}

export const ORIGIN = 'https://app.example.com';

/**
 * Opens a socket, resolving once open; rejects with `HTTP <status>` when the handshake is refused.
 * `onFrame` sees each frame as it arrives (timing tests); frames are kept unless `keep` is false.
 */
export async function openSocket(
  url: string,
  o: { cookie?: string; origin?: string; onFrame?: (data: Buffer) => void; keep?: boolean } = {},
  timeoutMs = 5000,
): Promise<Socket> {
  const frames: string[] = [];
  const onRaw = (data: Buffer) => {
    o.onFrame?.(data);
    if (o.keep !== false) frames.push(data.toString());
  };
  const client = await connect(url, { cookie: o.cookie, origin: o.origin ?? ORIGIN, onRaw }, timeoutMs);
  return { ws: client.ws, frames, closed: client.closed };
}

/**
 * The handshake's outcome (the socket is then closed): its HTTP status when refused (403, 503),
 * the close code when accepted only to be closed (4401 no session, 4429 over a limit), else 101.
 */
export function handshake(url: string, o: { cookie?: string; origin?: string } = {}): Promise<number> {
  return handshakeStatus(url, { cookie: o.cookie, origin: o.origin ?? ORIGIN });
}
