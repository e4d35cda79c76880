import type { ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { Transport } from './connection.js';

export function wsTransport(ws: WebSocket): Transport & { ping(): void } {
  return {
    kind: 'ws',
    buffered: () => ws.bufferedAmount,
    sendMessage(frame) {
      if (ws.readyState === ws.OPEN) ws.send(frame);
    },
    close(code, reason) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
      // A peer that never answers the close handshake is cut off.
      setTimeout(() => ws.terminate(), 5000).unref();
    },
    ping() {
      if (ws.readyState === ws.OPEN) ws.ping();
    },
  };
}

/**
 * Server-Sent Events: one-way, resumable with Last-Event-ID (each event's id
 * carries every channel cursor). A comment line every heartbeat keeps proxies
 * from timing the stream out.
 */
export function sseTransport(res: ServerResponse, heartbeatMs: number): Transport {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no', // nginx: do not buffer the stream
  });
  res.write('retry: 1000\n\n');
  const beat = setInterval(() => res.write(':\n\n'), heartbeatMs);
  beat.unref();
  res.on('close', () => clearInterval(beat));
  return {
    kind: 'sse',
    buffered: () => res.writableLength,
    sendMessage(frame, cursorId) {
      const isMsg = frame.startsWith('{"type":"msg"');
      res.write(`${isMsg ? `id: ${cursorId()}\n` : ''}data: ${frame}\n\n`);
    },
    close(code, reason) {
      if (!res.writableEnded) res.end(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
    },
  };
}
