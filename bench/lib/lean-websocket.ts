/**
 * A minimal WebSocket client (RFC 6455) on node:net for the load generators. A fan-out
 * client's work is one small frame per read; with `ws` most of that work is the stream
 * machinery around the frame (a Buffer per read, a Writable receiver, events), which the
 * load generator then spends more CPU on than the servers it measures spend sending.
 * Here the socket reads into one buffer shared by every connection of the process
 * (net's `onread`), and frames are parsed in place.
 *
 * Supported: ws:// only, the HTTP/1.1 upgrade with the Sec-WebSocket-Accept check, no
 * extensions (permessage-deflate is not offered), unmasked server frames with 7/16/64-bit
 * lengths, fragmented messages, ping → pong, the close handshake; masked client frames
 * for what a client sends. A protocol violation by the server fails the connection (1002).
 */

import { isUtf8 } from 'node:buffer';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_HEADER_BYTES = 16 * 1024;
const CLOSE_TIMEOUT_MS = 5000;

/** One read buffer for every connection: reads are handled one at a time, synchronously. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

export interface LeanWebSocketOptions {
  /** Extra request headers (cookie, origin …). */
  headers?: Record<string, string>;
  /** Largest message accepted, in bytes (default 16 MiB); a bigger one fails the connection with 1009. */
  maxPayload?: number;
  /**
   * Skip checking that text messages are UTF-8 (as `ws`'s skipUTF8Validation does): for a
   * load generator that trusts the servers it measures. Off by default.
   */
  skipUtf8Validation?: boolean;
}

/** The server answered the upgrade with something other than 101. */
export class HandshakeError extends Error {
  constructor(
    message: string,
    readonly statusCode: number | null,
  ) {
    super(message);
    this.name = 'HandshakeError';
  }
}

type State = 'connecting' | 'open' | 'closing' | 'closed';

export class LeanWebSocket {
  /**
   * A message: `data` is a view into a buffer reused by the next read, valid only during the
   * call (copy it to keep it). `binary` is false for text.
   */
  onmessage: (data: Buffer, binary: boolean) => void = () => {};
  onopen: () => void = () => {};
  /** Once, when the connection is gone: the close code received (1005 when none was given), or 1006. */
  onclose: (code: number, reason: string) => void = () => {};
  /** Before onclose, when the connection failed (handshake refused, protocol violation, socket error). */
  onerror: (err: Error) => void = () => {};

  #state: State = 'connecting';
  readonly #socket: Socket;
  readonly #key = randomBytes(16).toString('base64');
  readonly #maxPayload: number;
  readonly #validateUtf8: boolean;
  /** Handshake response bytes, until the blank line. */
  #header: Buffer[] = [];
  #headerBytes = 0;
  /** Bytes of an incomplete frame, and how many bytes are needed before parsing can go on. */
  #carry: Buffer[] = [];
  #carryBytes = 0;
  #need = 2;
  /** A fragmented message being assembled. */
  #fragments: Buffer[] | null = null;
  #fragmentBytes = 0;
  #fragmentBinary = false;
  #closeSent = false;
  #closeCode = 1006;
  #closeReason = '';
  #closeTimer: NodeJS.Timeout | undefined;
  #failed = false;

  constructor(url: string, options: LeanWebSocketOptions = {}) {
    const u = new URL(url);
    if (u.protocol !== 'ws:') throw new Error(`LeanWebSocket supports ws:// only, got ${u.protocol}`);
    this.#maxPayload = options.maxPayload ?? 16 * 1024 * 1024;
    this.#validateUtf8 = !options.skipUtf8Validation;
    const port = Number(u.port || 80);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    this.#socket = connect({
      host,
      port,
      onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.#onBytes(buf as Buffer, n) },
    });
    this.#socket.setNoDelay(true);
    const lines = [
      `GET ${u.pathname}${u.search} HTTP/1.1`,
      `Host: ${u.host}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${this.#key}`,
      'Sec-WebSocket-Version: 13',
    ];
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new Error(`header ${name}: no line breaks allowed`);
      lines.push(`${name}: ${value}`);
    }
    this.#socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    this.#socket.on('error', (err) => this.#fail(err));
    this.#socket.on('close', () => this.#closed());
  }

  get state(): State {
    return this.#state;
  }

  sendText(text: string): void {
    this.#send(0x1, Buffer.from(text));
  }

  sendBinary(data: Uint8Array): void {
    this.#send(0x2, data);
  }

  /** Starts the close handshake; the socket ends when the server answers (or after 5 s). */
  close(code = 1000, reason = '') {
    if (this.#state === 'connecting') return this.terminate();
    if (this.#state !== 'open') return;
    this.#state = 'closing';
    this.#sendClose(code, reason);
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), CLOSE_TIMEOUT_MS).unref();
  }

  /** Drops the connection without a close handshake. */
  terminate(): void {
    this.#socket.destroy();
  }

  #onBytes(buf: Buffer, n: number): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'connecting') {
      this.#onHeaderBytes(buf.subarray(0, n));
      return true;
    }
    this.#onFrameBytes(buf.subarray(0, n));
    return true;
  }

  #onHeaderBytes(chunk: Buffer) {
    // Copies: the read buffer is reused by the next read.
    this.#header.push(Buffer.from(chunk));
    this.#headerBytes += chunk.length;
    const all = Buffer.concat(this.#header, this.#headerBytes);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.#headerBytes > MAX_HEADER_BYTES) this.#fail(new HandshakeError('handshake response too large', null));
      return;
    }
    this.#header = [];
    const problem = this.#checkHandshake(all.toString('latin1', 0, end));
    if (problem) return this.#fail(problem);
    this.#state = 'open';
    this.onopen();
    const rest = all.subarray(end + 4);
    if (rest.length > 0 && this.#state === 'open') this.#onFrameBytes(rest);
  }

  #checkHandshake(head: string): HandshakeError | null {
    const [statusLine = '', ...lines] = head.split('\r\n');
    const status = /^HTTP\/1\.1 (\d{3})/.exec(statusLine);
    if (!status) return new HandshakeError(`not an HTTP response: ${statusLine.slice(0, 60)}`, null);
    const code = Number(status[1]);
    if (code !== 101) return new HandshakeError(`HTTP ${code}`, code);
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    if (headers.get('upgrade')?.toLowerCase() !== 'websocket')
      return new HandshakeError('Upgrade is not websocket', 101);
    const connection = (headers.get('connection') ?? '').toLowerCase().split(',');
    if (!connection.some((t) => t.trim() === 'upgrade')) return new HandshakeError('Connection is not upgrade', 101);
    const expected = createHash('sha1')
      .update(this.#key + GUID)
      .digest('base64');
    if (headers.get('sec-websocket-accept') !== expected)
      return new HandshakeError('Sec-WebSocket-Accept mismatch', 101);
    if (headers.has('sec-websocket-extensions'))
      return new HandshakeError('server chose an extension not offered', 101);
    if (headers.has('sec-websocket-protocol')) return new HandshakeError('server chose a subprotocol not offered', 101);
    return null;
  }

  #onFrameBytes(chunk: Buffer) {
    let data = chunk;
    if (this.#carryBytes > 0) {
      // Not enough yet to make progress: keep a copy and wait (each byte is copied once).
      if (this.#carryBytes + chunk.length < this.#need) {
        this.#carry.push(Buffer.from(chunk));
        this.#carryBytes += chunk.length;
        return;
      }
      this.#carry.push(chunk);
      data = Buffer.concat(this.#carry, this.#carryBytes + chunk.length);
      this.#carry = [];
      this.#carryBytes = 0;
    }
    const len = data.length;
    let pos = 0;
    this.#need = 2;
    // Stops at a close, a protocol error, or terminate() from a message handler.
    while ((this.#state === 'open' || this.#state === 'closing') && !this.#socket.destroyed) {
      if (len - pos < 2) break;
      const b0 = data[pos] as number;
      const b1 = data[pos + 1] as number;
      if (b1 & 0x80) return this.#protocolError(1002, 'server frames must not be masked');
      if (b0 & 0x70) return this.#protocolError(1002, 'no extension was negotiated (RSV bits set)');
      let size = b1 & 0x7f;
      let head = 2;
      if (size === 126) {
        head = 4;
        if (len - pos < 4) {
          this.#need = 4;
          break;
        }
        size = data.readUInt16BE(pos + 2);
      } else if (size === 127) {
        head = 10;
        if (len - pos < 10) {
          this.#need = 10;
          break;
        }
        const high = data.readUInt32BE(pos + 2);
        if (high > 0x1fffff) return this.#protocolError(1009, 'frame length beyond 2^53');
        size = high * 2 ** 32 + data.readUInt32BE(pos + 6);
      }
      if (size > this.#maxPayload) return this.#protocolError(1009, 'message too big');
      if (len - pos < head + size) {
        this.#need = head + size;
        break;
      }
      const payload = data.subarray(pos + head, pos + head + size);
      pos += head + size;
      this.#frame(b0, payload);
      this.#need = 2;
    }
    if (pos < len && !this.#socket.destroyed) {
      this.#carry.push(Buffer.from(data.subarray(pos)));
      this.#carryBytes = len - pos;
    }
  }

  #frame(b0: number, payload: Buffer) {
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (opcode >= 0x8) {
      if (!fin || payload.length > 125) return this.#protocolError(1002, 'control frames must be whole and short');
      if (opcode === 0x8) return this.#onClose(payload);
      if (opcode === 0x9) return this.#state === 'open' ? this.#send(0xa, payload) : undefined;
      if (opcode === 0xa) return;
      return this.#protocolError(1002, `unknown opcode ${opcode}`);
    }
    if (this.#state !== 'open') return; // data after our close frame: discarded
    if (opcode === 0x1 || opcode === 0x2) {
      if (this.#fragments) return this.#protocolError(1002, 'new message inside a fragmented one');
      if (fin) return this.#message(payload, opcode === 0x2);
      this.#fragments = [Buffer.from(payload)];
      this.#fragmentBytes = payload.length;
      this.#fragmentBinary = opcode === 0x2;
      return;
    }
    if (opcode !== 0x0) return this.#protocolError(1002, `unknown opcode ${opcode}`);
    if (!this.#fragments) return this.#protocolError(1002, 'continuation frame without a message');
    this.#fragmentBytes += payload.length;
    if (this.#fragmentBytes > this.#maxPayload) return this.#protocolError(1009, 'message too big');
    this.#fragments.push(Buffer.from(payload));
    if (!fin) return;
    const whole = Buffer.concat(this.#fragments, this.#fragmentBytes);
    this.#fragments = null;
    this.#fragmentBytes = 0;
    this.#message(whole, this.#fragmentBinary);
  }

  #message(data: Buffer, binary: boolean) {
    if (!binary && this.#validateUtf8 && !isUtf8(data)) return this.#protocolError(1007, 'text message is not UTF-8');
    this.onmessage(data, binary);
  }

  #onClose(payload: Buffer) {
    if (payload.length === 1) return this.#protocolError(1002, 'close payload of one byte');
    this.#closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    this.#closeReason = payload.length > 2 ? payload.toString('utf8', 2) : '';
    // Echo the code (RFC 6455 §5.5.1) unless we started the handshake, then let the TCP connection go.
    if (!this.#closeSent) this.#sendClose(this.#closeCode === 1005 ? null : this.#closeCode, '');
    this.#state = 'closing';
    this.#socket.end();
    // The server closes the TCP connection after the handshake; one that does not is cut off.
    this.#closeTimer ??= setTimeout(() => this.#socket.destroy(), CLOSE_TIMEOUT_MS).unref();
  }

  #protocolError(code: number, message: string) {
    const err = new Error(`WebSocket protocol error: ${message}`);
    if (!this.#closeSent && this.#state === 'open') this.#sendClose(code, '');
    this.#closeCode = 1006;
    this.#fail(err);
  }

  #sendClose(code: number | null, reason: string) {
    this.#closeSent = true;
    if (code === null) return this.#send(0x8, Buffer.alloc(0));
    const body = Buffer.allocUnsafe(2 + Buffer.byteLength(reason));
    body.writeUInt16BE(code, 0);
    body.write(reason, 2);
    this.#send(0x8, body);
  }

  /** A masked client frame (RFC 6455 §5.3): header, 4-byte key, payload XOR key. */
  #send(opcode: number, payload: Uint8Array) {
    if (this.#state !== 'open' && opcode !== 0x8) return;
    if (this.#socket.destroyed) return;
    const n = payload.length;
    const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(head + 4 + n);
    frame[0] = 0x80 | opcode;
    if (n < 126) frame[1] = 0x80 | n;
    else if (n < 65_536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(n, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
      frame.writeUInt32BE(n >>> 0, 6);
    }
    randomFillSync(frame, head, 4);
    for (let i = 0; i < n; i++) frame[head + 4 + i] = (payload[i] as number) ^ (frame[head + (i & 3)] as number);
    this.#socket.write(frame);
  }

  #fail(err: Error) {
    if (this.#failed || this.#state === 'closed') return;
    this.#failed = true;
    this.#state = 'closing';
    this.#socket.destroy();
    this.onerror(err);
  }

  #closed() {
    if (this.#state === 'closed') return;
    if (this.#state === 'connecting' && !this.#failed) {
      this.#failed = true;
      this.onerror(new HandshakeError('connection closed during the handshake', null));
    }
    this.#state = 'closed';
    clearTimeout(this.#closeTimer);
    this.onclose(this.#closeCode, this.#closeReason);
  }
}
