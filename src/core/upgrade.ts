import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** A WebSocket handshake, as opposed to another protocol upgrade a client offers (h2c). */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return req.headers.upgrade?.toLowerCase() === 'websocket';
}

/** Headers that only offer the upgrade: dropped when the request is served as it is. */
const OFFER = new Set(['upgrade', 'http2-settings']);

/**
 * Serves an upgrade request that is not a WebSocket handshake as the plain HTTP/1.1 request it also
 * is. Java's HttpClient offers h2c on every plain-http request (`Upgrade: h2c`); node hands any
 * request with an Upgrade header to the server's 'upgrade' listener once it has one, with no way to
 * decline, so a POST /publish from Java reached the WebSocket handshake and was refused. The request
 * is given back to the server on its own socket without the offer, as a new connection: node parses
 * it again and answers it with HTTP/1.1, which is how a server declines an upgrade.
 */
export function serveAsPlainRequest(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const lines = [`${req.method} ${req.url} HTTP/1.1`];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (OFFER.has(lower)) continue;
    if (lower === 'connection') {
      const kept = value
        .split(',')
        .map((token) => token.trim())
        .filter((token) => token !== '' && !OFFER.has(token.toLowerCase()));
      if (kept.length > 0) lines.push(`${name}: ${kept.join(', ')}`);
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head]));
  server.emit('connection', socket);
}
