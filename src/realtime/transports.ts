import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Transport } from './connection.js';

/**
 * Every WebSocket write of this tick waits for the next one and leaves as ONE write per
 * socket: the messages one bus read brings (often several) go out in one system call per
 * socket, and in a fan-out the system calls, not JavaScript, are most of a gateway's work.
 *
 * Each message is framed once per tick (RFC 6455: FIN + text opcode, unmasked as server
 * frames are, then the length) and appended to `tickFrames`. A fan-out hands every socket
 * the same frames in the same order, so what a socket has pending is usually a run of
 * consecutive frames of that list, and the bytes of a run are joined once and the same
 * Buffer written to every socket that has that run. A socket whose frames are not one run
 * (its own replies mixed in) gets its own concatenation.
 */
const tickFrames: Buffer[] = [];
/** The text of the last frame in `tickFrames`: a fan-out asks for the same text once per socket. */
let lastText: string | undefined;
/** Joined runs of this tick, by first and last index. */
const runs = new Map<number, Buffer>();
let pending: Outbox[] = [];
let spare: Outbox[] = [];

/** One socket's frames of this tick. */
interface Outbox {
  readonly socket: Duplex;
  readonly ws: WebSocket;
  /** Frames pending; while `frames` is null they are tickFrames[first..last]. */
  count: number;
  /**
   * `ws.bufferedAmount` when the first frame of the tick was queued. Until the flush nothing
   * else writes to the socket nor learns that the kernel took bytes, so it stays exact and
   * a socket sent many frames in one tick reads it once.
   */
  backlog: number;
  first: number;
  last: number;
  frames: Buffer[] | null;
  bytes: number;
}

function frameOfText(text: string): number {
  if (text === lastText) return tickFrames.length - 1;
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
  return tickFrames.push(frame) - 1;
}

function enqueue(out: Outbox, text: string): void {
  const index = frameOfText(text);
  const frame = tickFrames[index] as Buffer;
  out.bytes += frame.length;
  if (out.count === 0) {
    out.backlog = out.ws.bufferedAmount;
    out.first = index;
    out.last = index;
    out.count = 1;
    if (pending.length === 0) process.nextTick(flushAll);
    pending.push(out);
    return;
  }
  out.count++;
  if (out.frames === null && index === out.last + 1) {
    out.last = index;
    return;
  }
  out.frames ??= tickFrames.slice(out.first, out.last + 1);
  out.frames.push(frame);
}

function runOf(first: number, last: number): Buffer {
  if (first === last) return tickFrames[first] as Buffer;
  const key = first * 2 ** 26 + last;
  let run = runs.get(key);
  if (!run) {
    run = Buffer.concat(tickFrames.slice(first, last + 1));
    runs.set(key, run);
  }
  return run;
}

function flush(out: Outbox): void {
  if (out.count === 0) return;
  const bytes = out.frames ? Buffer.concat(out.frames, out.bytes) : runOf(out.first, out.last);
  out.count = 0;
  out.frames = null;
  out.bytes = 0;
  // A socket closed in the meantime gets nothing more (not even after a close frame).
  if (out.ws.readyState === out.ws.OPEN && !out.socket.destroyed) out.socket.write(bytes);
}

function flushAll(): void {
  const outs = pending;
  pending = spare;
  for (const out of outs) flush(out);
  outs.length = 0;
  spare = outs;
  tickFrames.length = 0;
  lastText = undefined;
  runs.clear();
}

/**
 * `socket` is the connection the upgrade came on, the one `ws` writes to. With it, messages
 * are written pre-framed straight to it: the same bytes `ws.send` would write (the gateway's
 * WebSocket server has permessage-deflate off, so `ws` never queues or transforms a frame),
 * without building a frame per socket. Bytes waiting for the next tick count as buffered.
 */
export function wsTransport(ws: WebSocket, socket?: Duplex): Transport {
  const out: Outbox | null = socket
    ? { socket, ws, count: 0, backlog: 0, first: 0, last: 0, frames: null, bytes: 0 }
    : null;
  return {
    kind: 'ws',
    buffered: () => (out && out.count > 0 ? out.backlog + out.bytes : ws.bufferedAmount),
    sendMessage(text) {
      // Frames already queued this tick: the socket was open then (and a flush checks again).
      if (out && out.count > 0) return enqueue(out, text);
      if (ws.readyState !== ws.OPEN) return;
      if (!out) return ws.send(text);
      enqueue(out, text);
    },
    close(code, reason) {
      // What was sent before the close goes first: nothing may follow the close frame.
      if (out) flush(out);
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
 * carries every channel cursor). A `ping` event every heartbeat keeps proxies
 * from timing the stream out and lets the client notice a dead stream: an
 * EventSource hides comment lines, but it dispatches events. Its data is the
 * period, so the client knows how long a silence is too long.
 */
export function sseTransport(res: ServerResponse, heartbeatMs: number): Transport {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no', // nginx: do not buffer the stream
  });
  res.write('retry: 1000\n\n');
  const ping = `event: ping\ndata: {"every":${heartbeatMs}}\n\n`;
  const beat = setInterval(() => res.write(ping), heartbeatMs);
  beat.unref();
  res.on('close', () => clearInterval(beat));
  return {
    kind: 'sse',
    buffered: () => res.writableLength,
    sendMessage(frame, cursorId) {
      const isMsg = frame.startsWith('{"type":"msg"');
      res.write(`${isMsg ? `id: ${cursorId()}\n` : ''}data: ${frame}\n\n`);
    },
    ping() {},
    close(code, reason) {
      if (!res.writableEnded) res.end(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
    },
  };
}
