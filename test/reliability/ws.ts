import { WebSocket } from 'ws';

/** A WebSocket client for the reliability and security tests: raw frames, close code, handshake status. */
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
export function openSocket(
  url: string,
  o: { cookie?: string; origin?: string; onFrame?: (data: Buffer) => void; keep?: boolean } = {},
  timeoutMs = 5000,
): Promise<Socket> {
  const headers: Record<string, string> = { origin: o.origin ?? ORIGIN, ...(o.cookie ? { cookie: o.cookie } : {}) };
  const ws = new WebSocket(url, { headers, perMessageDeflate: false });
  const frames: string[] = [];
  ws.on('message', (data: Buffer) => {
    o.onFrame?.(data);
    if (o.keep !== false) frames.push(data.toString());
  });
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`handshake to ${url} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve({ ws, frames, closed });
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      ws.terminate();
      reject(new Error(`HTTP ${res.statusCode}`));
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** The handshake's HTTP status: 101 when accepted (the socket is then closed at once). */
export async function handshake(url: string, o: { cookie?: string; origin?: string } = {}): Promise<number> {
  try {
    const s = await openSocket(url, o);
    s.ws.terminate();
    return 101;
  } catch (err) {
    const m = /^HTTP (\d+)$/.exec((err as Error).message);
    if (m) return Number(m[1]);
    throw err;
  }
}
