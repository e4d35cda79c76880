import { createHash } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { HandshakeError, LeanWebSocket } from '../../bench/lib/lean-websocket.js';
import { payloadTime } from '../../bench/lib/payload-time.js';
import { eventually } from '../helpers/eventually.js';

/**
 * The benchmarks' WebSocket client against a real `ws` server (and, for what `ws` never
 * sends, a raw TCP server speaking the handshake): every length encoding, fragmentation,
 * frames split across reads and many frames in one read, ping/pong, both close
 * directions, and the handshake and protocol failures it must refuse.
 */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const servers: Array<HttpServer | NetServer> = [];
const clients: LeanWebSocket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

interface Received {
  messages: Array<{ text: string; binary: boolean }>;
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  errors: Error[];
}

function open(url: string, headers?: Record<string, string>): { ws: LeanWebSocket; got: Received } {
  const ws = new LeanWebSocket(url, { headers: headers ?? {} });
  clients.push(ws);
  const got: Received = {
    messages: [],
    errors: [],
    opened: Promise.resolve(),
    closed: Promise.resolve({ code: 0, reason: '' }),
  };
  got.opened = new Promise((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (err) => {
      got.errors.push(err);
      reject(err);
    };
  });
  got.opened.catch(() => {});
  got.closed = new Promise((resolve) => {
    ws.onclose = (code, reason) => resolve({ code, reason });
  });
  // The data is a view into a reused buffer: it must be copied (here, decoded) at once.
  ws.onmessage = (data, binary) => got.messages.push({ text: data.toString(binary ? 'latin1' : 'utf8'), binary });
  return { ws, got };
}

async function wsServer(): Promise<{ url: string; connection: Promise<WebSocket>; wss: WebSocketServer }> {
  const http = createServer();
  servers.push(http);
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  const connection = new Promise<WebSocket>((resolve) => wss.once('connection', (ws) => resolve(ws)));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
  const { port } = http.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}/path?x=1`, connection, wss };
}

/** A TCP server that answers the upgrade itself (`accept` decides the Sec-WebSocket-Accept) and then runs `then`. */
async function rawServer(
  then: (socket: Socket) => void,
  accept: (key: string) => string = (key) =>
    createHash('sha1')
      .update(key + GUID)
      .digest('base64'),
): Promise<string> {
  const server = createNetServer((socket) => {
    let head = '';
    socket.on('error', () => {});
    socket.on('data', function onData(chunk) {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      const key = /sec-websocket-key: (.+)\r\n/i.exec(head)?.[1] ?? '';
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`,
      );
      then(socket);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

describe('LeanWebSocket', () => {
  it('sends the request headers and reads messages of every length encoding, text and binary, in order', async () => {
    const server = await wsServer();
    let headers: Record<string, string | string[] | undefined> = {};
    server.wss.once('headers', (_lines, req) => {
      headers = req.headers;
    });
    const { got } = open(server.url, { cookie: 'sid=abc', origin: 'http://bench.localhost' });
    await got.opened;
    expect(headers.cookie).toBe('sid=abc');
    expect(headers.origin).toBe('http://bench.localhost');
    const ws = await server.connection;
    const texts = ['', 'a', 'x'.repeat(125), 'x'.repeat(126), 'é'.repeat(100), 'y'.repeat(65_535), 'z'.repeat(65_536)];
    texts.push(`{"data":"${'😀'.repeat(300_000)}"}`); // 1.2 MB: 64-bit length, many reads
    for (const t of texts) ws.send(t);
    ws.send(Buffer.from([0, 1, 2, 255]), { binary: true });
    await eventually(() => got.messages.length === texts.length + 1);
    expect(got.messages.slice(0, texts.length).map((m) => m.text)).toEqual(texts);
    expect(got.messages.every((m, i) => m.binary === (i === texts.length))).toBe(true);
    expect(Buffer.from(got.messages[texts.length]?.text ?? '', 'latin1')).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('reads a thousand frames that arrive in one read', async () => {
    const server = await wsServer();
    const { got } = open(server.url);
    await got.opened;
    const ws = await server.connection;
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.cork();
    for (let i = 0; i < 1000; i++) ws.send(`{"id":${i}}`);
    socket.uncork();
    await eventually(() => got.messages.length === 1000);
    expect(got.messages.map((m) => m.text)).toEqual(Array.from({ length: 1000 }, (_, i) => `{"id":${i}}`));
  });

  it('reassembles a fragmented message, answering a ping sent between its fragments', async () => {
    const server = await wsServer();
    const { got } = open(server.url);
    await got.opened;
    const ws = await server.connection;
    const pong = new Promise<string>((resolve) => ws.once('pong', (data) => resolve(data.toString())));
    ws.send('hello, ', { fin: false });
    ws.ping('are you there');
    ws.send('frag', { fin: false });
    ws.send('mented world', { fin: true });
    ws.send('next');
    expect(await pong).toBe('are you there');
    await eventually(() => got.messages.length === 2);
    expect(got.messages.map((m) => m.text)).toEqual(['hello, fragmented world', 'next']);
  });

  it('parses frames whose bytes arrive one at a time', async () => {
    const frame = (text: string) => {
      const payload = Buffer.from(text);
      const n = payload.length;
      const head = n < 126 ? Buffer.from([0x81, n]) : Buffer.from([0x81, 126, n >> 8, n & 0xff]);
      return Buffer.concat([head, payload]);
    };
    const bytes = Buffer.concat([frame('first'), frame('s'.repeat(300)), frame('last')]);
    const url = await rawServer((socket) => {
      socket.setNoDelay(true);
      let i = 0;
      const timer = setInterval(() => {
        if (i >= bytes.length || socket.destroyed) return clearInterval(timer);
        socket.write(bytes.subarray(i, i + 1));
        i++;
      }, 0);
    });
    const { got } = open(url);
    await got.opened;
    await eventually(() => got.messages.length === 3, { timeoutMs: 15_000 });
    expect(got.messages.map((m) => m.text)).toEqual(['first', 's'.repeat(300), 'last']);
  }, 20_000);

  it('sends masked text frames the server reads', async () => {
    const server = await wsServer();
    const { ws: client, got } = open(server.url);
    await got.opened;
    const ws = await server.connection;
    const received: string[] = [];
    ws.on('message', (data) => received.push(data.toString()));
    client.sendText('40');
    client.sendText('é'.repeat(200));
    client.sendText('z'.repeat(70_000));
    await eventually(() => received.length === 3);
    expect(received).toEqual(['40', 'é'.repeat(200), 'z'.repeat(70_000)]);
  });

  it('answers a close from the server and reports its code and reason', async () => {
    const server = await wsServer();
    const { got } = open(server.url);
    await got.opened;
    const ws = await server.connection;
    const serverSaw = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.close(4008, 'send queue overflow');
    expect(await got.closed).toEqual({ code: 4008, reason: 'send queue overflow' });
    expect(await serverSaw).toBe(4008);
  });

  it('closes with a handshake the server completes', async () => {
    const server = await wsServer();
    const { ws: client, got } = open(server.url);
    await got.opened;
    const ws = await server.connection;
    const serverSaw = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    client.close(1000, 'bye');
    expect(await serverSaw).toBe(1000);
    expect((await got.closed).code).toBe(1000);
    expect(client.state).toBe('closed');
  });

  it('reports 1006 when the connection is dropped without a close frame', async () => {
    const server = await wsServer();
    const { got } = open(server.url);
    await got.opened;
    (await server.connection).terminate();
    expect((await got.closed).code).toBe(1006);
  });

  it('refuses a handshake answered with another status, with that status', async () => {
    const http = createServer();
    servers.push(http);
    http.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    const { got } = open(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/`);
    const err = await got.opened.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).statusCode).toBe(401);
    expect((await got.closed).code).toBe(1006);
  });

  it('refuses a 101 whose Sec-WebSocket-Accept does not match the key', async () => {
    const url = await rawServer(
      () => {},
      () => 'd3JvbmcgYWNjZXB0IHZhbHVlIQ==',
    );
    const { got } = open(url);
    await expect(got.opened).rejects.toThrow(/Sec-WebSocket-Accept/);
    await got.closed;
  });

  it('fails the connection on a masked server frame, without delivering it', async () => {
    const url = await rawServer((socket) => {
      socket.write(Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]));
    });
    const { ws, got } = open(url);
    const failed = new Promise<Error>((resolve) => {
      ws.onerror = resolve;
    });
    await got.opened;
    expect((await failed).message).toMatch(/masked/);
    expect((await got.closed).code).toBe(1006);
    expect(got.messages).toEqual([]);
  });

  it('refuses ws frames bigger than maxPayload with 1009', async () => {
    const server = await wsServer();
    const ws = new LeanWebSocket(server.url, { maxPayload: 1000 });
    clients.push(ws);
    await new Promise<void>((resolve) => {
      ws.onopen = () => resolve();
    });
    const failed = new Promise<Error>((resolve) => {
      ws.onerror = resolve;
    });
    const conn = await server.connection;
    const serverSaw = new Promise<number>((resolve) => conn.once('close', (code) => resolve(code)));
    conn.send('x'.repeat(1001));
    expect((await failed).message).toMatch(/too big/);
    expect(await serverSaw).toBe(1009);
  });
});

describe('payloadTime', () => {
  it('reads the publish time at the end of each system’s envelope as parseFloat would', () => {
    const t = 1_764_066_262_123.25;
    const frames = [
      `{"id":1,"t":${t}}`,
      `{"type":"msg","channel":"room:r","epoch":"9f4b","offset":7,"event":"m","data":{"id":7,"t":${t}}}`,
      `42["msg",{"id":1,"t":${t}}]`,
      `{"id":1,"t":1764066262123}`,
      `{"id":1,"t":0.5}`,
      `{"id":1,"t":1.7e12}`,
      `{"t":5,"pad":"${'p'.repeat(100)}"}`, // the mark is not in the frame's tail
    ];
    for (const f of frames) {
      const slow = Number.parseFloat(f.slice(f.lastIndexOf('"t":') + 4));
      expect(payloadTime(Buffer.from(f))).toBeCloseTo(slow, 6);
    }
  });

  it('is NaN for frames without a time', () => {
    for (const f of ['{"type":"hello"}', '{"id":1,"t":"soon"}', '{"id":1,"t":}', '', '2']) {
      expect(payloadTime(Buffer.from(f))).toBeNaN();
    }
  });
});
