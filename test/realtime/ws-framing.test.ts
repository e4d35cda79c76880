import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { wsTransport } from '../../src/realtime/transports.js';

/**
 * The WebSocket transport frames each message itself (once, for every socket it goes
 * to) and writes the bytes straight to the connection: a standard client must read back
 * exactly what was sent, whatever the length encoding (7-bit, 16-bit, 64-bit) and
 * whatever the characters.
 */
let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function roundTrip(texts: string[], sockets: number): Promise<string[][]> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const transports: Array<ReturnType<typeof wsTransport>> = [];
  let ready: () => void = () => {};
  const allConnected = new Promise<void>((resolve) => {
    ready = resolve;
  });
  server = createServer();
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      transports.push(wsTransport(ws, socket));
      if (transports.length === sockets) ready();
    }),
  );
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  const received: string[][] = [];
  const clients = await Promise.all(
    Array.from({ length: sockets }, async (_, i) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
      received[i] = [];
      ws.on('message', (data, isBinary) => {
        expect(isBinary).toBe(false);
        received[i]?.push(data.toString());
      });
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      return ws;
    }),
  );
  await allConnected;
  // A fan-out: each message to every socket in turn, as the gateway delivers a bus message.
  for (const text of texts) for (const t of transports) t.sendMessage(text, () => '');
  const deadline = Date.now() + 5000;
  while (received.some((r) => r.length < texts.length) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  for (const ws of clients) ws.terminate();
  wss.close();
  return received;
}

describe('WebSocket transport framing', () => {
  it('delivers messages of every length encoding and UTF-8 text intact, in order, to every socket', async () => {
    const texts = [
      '',
      'a',
      'x'.repeat(125),
      'x'.repeat(126),
      'é'.repeat(100), // 200 bytes: the 16-bit length counts bytes, not characters
      'y'.repeat(65_535),
      'z'.repeat(65_536),
      `{"type":"msg","data":"${'😀'.repeat(20_000)}"}`, // > 64 KiB: 64-bit length
      'a', // the same text again after others
      'a',
    ];
    const received = await roundTrip(texts, 3);
    for (const r of received) expect(r).toEqual(texts);
  });
});
