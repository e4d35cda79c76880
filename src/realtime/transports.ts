import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Transport } from './connection.js';

/**
 * Sockets written to in this tick, corked until the next one: the messages one bus read
 * brings (often several) leave in one write per socket instead of one write each. In a
 * fan-out the system calls, not JavaScript, are most of a gateway's work.
 */
const corked = new Set<Duplex>();
const uncorkAll = () => {
  for (const socket of corked) socket.uncork();
  corked.clear();
};

/**
 * The last message framed: a fan-out sends the same message to every socket, so its
 * WebSocket frame (RFC 6455: FIN + text opcode, unmasked as server frames are, then
 * the length) is built once and the same bytes are written to each socket.
 */
let lastText: string | undefined;
let lastFrame = Buffer.alloc(0);
const framed = (text: string): Buffer => {
  if (text === lastText) return lastFrame;
  const payload = Buffer.from(text);
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x81;
  if (n < 126) frame[1] = n;
  else if (n < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    frame.writeUInt32BE(n >>> 0, 6);
  }
  payload.copy(frame, head);
  lastText = text;
  lastFrame = frame;
  return frame;
};

/**
 * `socket` is the connection the upgrade came on, the one `ws` writes to. With it, messages
 * are written pre-framed straight to it: the same bytes `ws.send` would write (the gateway's
 * WebSocket server has permessage-deflate off, so `ws` never queues or transforms a frame),
 * without building a frame per socket. Its bytes still count in `bufferedAmount`.
 */
export function wsTransport(ws: WebSocket, socket?: Duplex): Transport & { ping(): void } {
  return {
    kind: 'ws',
    buffered: () => ws.bufferedAmount,
    sendMessage(text) {
      if (ws.readyState !== ws.OPEN) return;
      if (!socket) return ws.send(text);
      if (!corked.has(socket)) {
        if (corked.size === 0) process.nextTick(uncorkAll);
        socket.cork();
        corked.add(socket);
      }
      socket.write(framed(text));
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
