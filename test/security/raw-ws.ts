import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * WebSocket at the byte level (RFC 6455), for sending what no well-behaved client
 * library would: malformed frames, reserved bits, lying lengths, floods.
 */
export interface RawConnection {
  socket: Socket;
  /** The handshake response's status line code (101 when upgraded). */
  status: number;
  /** The handshake response's headers, lower-cased names. */
  headers: Record<string, string>;
  /** Frames the server sent after the handshake. */
  frames: ServerFrame[];
  /** Resolves when the TCP connection is closed (by either side). */
  ended: Promise<void>;
  send(frame: Buffer): boolean;
  /** The close frame the server sent, once it did (or null after `timeoutMs`). */
  closeCode(timeoutMs?: number): Promise<number | null>;
}

export interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

export const Op = { Continuation: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

/** One client frame. Masked unless `mask: false`; `length` may lie about the payload's size. */
export function frame(
  opcode: number,
  payload: Buffer | string = Buffer.alloc(0),
  o: { fin?: boolean; rsv?: number; mask?: boolean; length?: number | bigint } = {},
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const length = o.length ?? data.length;
  const mask = o.mask ?? true;
  const head = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  let ext = Buffer.alloc(0);
  const n = BigInt(length);
  if (n < 126n) head.push((mask ? 0x80 : 0) | Number(n));
  else if (n < 65536n) {
    head.push((mask ? 0x80 : 0) | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(Number(n));
  } else {
    head.push((mask ? 0x80 : 0) | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(n);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, data]);
  const key = randomBytes(4);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i] = (masked[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([Buffer.from(head), ext, key, masked]);
}

/** A close frame's payload: the code, then an optional reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.from(reason)]);
}

/**
 * Opens a TCP connection and sends a handshake made of `extraHeaders` (raw lines, any
 * number, any content) on top of the minimal valid ones (unless `omit` names them).
 */
export function rawUpgrade(
  port: number,
  o: { path?: string; headers?: Record<string, string>; extraLines?: string[]; timeoutMs?: number } = {},
): Promise<RawConnection> {
  const headers: Record<string, string> = {
    host: `127.0.0.1:${port}`,
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': randomBytes(16).toString('base64'),
    'sec-websocket-version': '13',
    ...o.headers,
  };
  const lines = [`GET ${o.path ?? '/ws'} HTTP/1.1`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  lines.push(...(o.extraLines ?? []));
  const request = `${lines.join('\r\n')}\r\n\r\n`;

  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const ended = new Promise<void>((r) => socket.once('close', () => r()));
    const frames: ServerFrame[] = [];
    const waiters = new Set<() => void>();
    let buf = Buffer.alloc(0);
    let handshake: { status: number; headers: Record<string, string> } | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no handshake response in time'));
    }, o.timeoutMs ?? 5000);
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      for (const w of waiters) w();
      if (!handshake) reject(new Error(`connection closed before a handshake response: ${buf.toString()}`));
    });
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!handshake) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const [statusLine = '', ...rest] = buf.subarray(0, end).toString('latin1').split('\r\n');
        const parsed: Record<string, string> = {};
        for (const line of rest) {
          const colon = line.indexOf(':');
          if (colon > 0) parsed[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        handshake = { status: Number(statusLine.split(' ')[1]), headers: parsed };
        buf = buf.subarray(end + 4);
        clearTimeout(timer);
        resolve(conn);
      }
      for (;;) {
        const f = parseFrame(buf);
        if (!f) break;
        frames.push(f.frame);
        buf = buf.subarray(f.size);
        for (const w of waiters) w();
      }
    });
    const conn: RawConnection = {
      socket,
      get status() {
        return handshake?.status ?? 0;
      },
      get headers() {
        return handshake?.headers ?? {};
      },
      frames,
      ended,
      send: (f) => socket.write(f),
      closeCode(timeoutMs = 3000) {
        const found = () => frames.find((f) => f.opcode === Op.Close);
        return new Promise((done) => {
          const check = () => {
            const f = found();
            if (f) {
              cleanup();
              done(f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005);
            } else if (socket.destroyed) {
              cleanup();
              done(null);
            }
          };
          const t = setTimeout(() => {
            cleanup();
            done(null);
          }, timeoutMs);
          const cleanup = () => {
            clearTimeout(t);
            waiters.delete(check);
          };
          waiters.add(check);
          check();
        });
      },
    };
    socket.write(request);
  });
}

function parseFrame(buf: Buffer): { frame: ServerFrame; size: number } | null {
  if (buf.length < 2) return null;
  const b0 = buf[0] as number;
  const b1 = buf[1] as number;
  let len = b1 & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  if (buf.length < at + len) return null;
  return { frame: { fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: buf.subarray(at, at + len) }, size: at + len };
}
