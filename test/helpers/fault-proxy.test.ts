import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './eventually.js';
import { type FaultProxy, faultProxy, targetOf, viaProxy } from './fault-proxy.js';

/** A real echo server: every byte it receives goes straight back. */
let echo: Server;
let echoPort = 0;
const serverSockets = new Set<Socket>();

beforeAll(async () => {
  echo = createServer((s) => {
    serverSockets.add(s);
    s.on('close', () => serverSockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of serverSockets) s.destroy();
  await new Promise((r) => echo.close(r));
});

const proxies: FaultProxy[] = [];
const clients: Socket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

async function start(options?: Parameters<typeof faultProxy>[1]): Promise<FaultProxy> {
  const p = await faultProxy(echoPort, options);
  proxies.push(p);
  return p;
}

/** A client socket that records what it receives and how it ended. */
async function client(port: number) {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true });
  clients.push(socket);
  const state = { data: Buffer.alloc(0), error: undefined as NodeJS.ErrnoException | undefined, closed: false };
  socket.on('data', (d: Buffer) => {
    state.data = Buffer.concat([state.data, d]);
  });
  socket.on('error', (err) => {
    state.error = err;
  });
  socket.on('close', () => {
    state.closed = true;
  });
  await once(socket, 'connect');
  return { socket, state };
}

/** Sends `text` and resolves with the round-trip time once all of it came back. */
async function roundTrip(c: Awaited<ReturnType<typeof client>>, text: string, timeoutMs = 5000): Promise<number> {
  const before = c.state.data.length;
  const started = Date.now();
  c.socket.write(text);
  await eventually(() => c.state.data.length >= before + Buffer.byteLength(text), { timeoutMs, message: 'the echo' });
  return Date.now() - started;
}

describe('fault proxy', () => {
  it('relays bytes both ways unchanged, and counts them', async () => {
    const p = await start();
    const c = await client(p.port);
    const payload = Buffer.alloc(300_000, 7).toString('latin1');
    await roundTrip(c, payload);
    expect(c.state.data.toString('latin1')).toBe(payload);
    expect(p.stats()).toMatchObject({ accepted: 1, open: 1, bytesUp: 300_000, bytesDown: 300_000 });
  });

  it('adds latency per direction, with jitter, and never reorders bytes', async () => {
    const p = await start();
    p.latency(100, 50);
    const c = await client(p.port);
    const rtt = await roundTrip(c, 'x');
    // 50–150 ms each way.
    expect(rtt).toBeGreaterThanOrEqual(95);
    expect(rtt).toBeLessThan(600);
    const parts = Array.from({ length: 50 }, (_, i) => `<${i}>`);
    for (const part of parts) c.socket.write(part);
    const all = parts.join('');
    await eventually(() => c.state.data.toString().endsWith(all), { timeoutMs: 3000 });
    p.clear();
    expect(await roundTrip(c, 'y')).toBeLessThan(50);
  });

  it('limits bandwidth per direction, and stops reading from a sender it cannot keep up with', async () => {
    const p = await start({ highWaterBytes: 16 * 1024 });
    p.bandwidth(8_000);
    const c = await client(p.port);
    const rtt = await roundTrip(c, 'z'.repeat(8_000));
    // 8 KB at 8 KB/s: about one second (the first 50 ms burst is free).
    expect(rtt).toBeGreaterThan(800);
    expect(rtt).toBeLessThan(2_500);
    // A sender pushing far more than the link carries is held back by TCP, not buffered in the proxy.
    const big = Buffer.alloc(4 * 1024 * 1024, 1);
    c.socket.write(big);
    await new Promise((r) => setTimeout(r, 300));
    expect(p.stats().queued).toBeLessThanOrEqual(2 * 16 * 1024 + 64 * 1024);
    expect(p.stats().maxQueued).toBeLessThan(16 * 1024 + 128 * 1024);
    p.bandwidth(null);
    await eventually(() => c.state.data.length === 8_000 + big.length, { timeoutMs: 5000 });
  });

  it('blackholes existing and new connections, then delivers what it held once healed', async () => {
    const p = await start();
    const c = await client(p.port);
    await roundTrip(c, 'before');
    p.blackhole();
    c.socket.write('held');
    const fresh = await client(p.port); // accepted by the proxy, never reaches the server
    fresh.socket.write('fresh');
    await new Promise((r) => setTimeout(r, 300));
    expect(c.state.data.toString()).toBe('before');
    expect(fresh.state.data.length).toBe(0);
    expect(serverSockets.size).toBe(1);
    expect(p.stats().queued).toBe('held'.length + 'fresh'.length);
    p.clear();
    await eventually(() => c.state.data.toString() === 'beforeheld', { timeoutMs: 2000 });
    await eventually(() => fresh.state.data.toString() === 'fresh', { timeoutMs: 2000 });
  });

  it('resets existing connections and every new one until cleared', async () => {
    const p = await start();
    const c = await client(p.port);
    await roundTrip(c, 'a');
    p.reset();
    await eventually(() => c.state.closed, { timeoutMs: 2000 });
    expect(c.state.error?.code).toBe('ECONNRESET');
    // The RST may arrive before or after the client saw its connect complete.
    const next = await client(p.port).then(
      async (n) => {
        await eventually(() => n.state.closed, { timeoutMs: 2000 });
        return n.state.error;
      },
      (err: NodeJS.ErrnoException) => err,
    );
    expect(next?.code).toBe('ECONNRESET');
    p.clear();
    const healed = await client(p.port);
    await roundTrip(healed, 'ok');
  });

  it('goes down (connections closed, port refuses) and comes back on the same port', async () => {
    const p = await start();
    const port = p.port;
    const c = await client(port);
    await roundTrip(c, 'a');
    await p.down();
    await eventually(() => c.state.closed, { timeoutMs: 2000 });
    await expect(client(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await p.up();
    expect(p.port).toBe(port);
    await roundTrip(await client(port), 'back');
  });

  it('forwards a half-close only after the bytes before it, and passes a server reset on', async () => {
    const p = await start();
    p.latency(50);
    const c = await client(p.port);
    c.socket.end('last words');
    await eventually(() => c.state.data.toString() === 'last words' && c.state.closed, { timeoutMs: 2000 });
    expect(c.state.error).toBeUndefined();
    p.clear();
    const d = await client(p.port);
    await roundTrip(d, 'x');
    for (const s of serverSockets) s.resetAndDestroy();
    await eventually(() => d.state.closed, { timeoutMs: 2000 });
    expect(d.state.error?.code).toBe('ECONNRESET');
  });

  it('close() destroys every socket and frees the port; counts stay bounded', async () => {
    const p = await faultProxy(echoPort);
    const port = p.port;
    const cs = await Promise.all(Array.from({ length: 5 }, () => client(port)));
    await eventually(() => serverSockets.size >= 5, { timeoutMs: 2000 });
    expect(p.stats()).toMatchObject({ open: 5, maxOpen: 5 });
    await p.close();
    await eventually(() => cs.every((c) => c.state.closed) && serverSockets.size === 0, { timeoutMs: 2000 });
    expect(p.stats().open).toBe(0);
    await expect(client(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(p.up()).rejects.toThrow(/after close/);
  });

  it('rewrites backend URLs to go through the proxy', () => {
    const p = { address: '127.0.0.1:4000' };
    expect(viaProxy('redis://127.0.0.1:6379/0', p)).toBe('redis://127.0.0.1:4000/0');
    expect(viaProxy('postgres://postgres@127.0.0.1:5432/test?x=1', p)).toBe(
      'postgres://postgres@127.0.0.1:4000/test?x=1',
    );
    expect(viaProxy('amqp://guest:guest@127.0.0.1:5672', p)).toBe('amqp://guest:guest@127.0.0.1:4000');
    expect(targetOf('nats://127.0.0.1')).toBe('127.0.0.1:4222');
    expect(targetOf('postgres://u@db.internal/x')).toBe('db.internal:5432');
  });
});
