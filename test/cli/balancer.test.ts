import { createServer as createHttpServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createBalancer, type Upstream } from '../../src/cli/balancer.js';

/**
 * A blackholed upstream on loopback: a listener whose thread never runs accept() (its event loop is
 * blocked in Atomics.wait) and whose accept queue is full, so the kernel drops further SYNs — what a
 * node behind a cut-off network looks like to the balancer.
 */
async function blackhole(): Promise<{ port: number; close(): Promise<void> }> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const server = require('node:net').createServer();
     server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       Atomics.wait(workerData, 0, 0); // the loop never turns again: nothing is accepted
     });`,
    { eval: true, workerData: flag },
  );
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // Fill the accept queue; the first connection that does not complete proves the blackhole.
  const fillers: Socket[] = [];
  let holed = false;
  for (let i = 0; i < 16 && !holed; i++) {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
    holed = !(await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 300);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(true);
      });
    }));
  }
  if (!holed) throw new Error('could not fill the accept queue of the blackhole listener');
  return {
    port,
    async close() {
      for (const s of fillers) s.destroy();
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      await worker.terminate();
    },
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function node(name: string, handler: Parameters<typeof createHttpServer>[1]) {
  const server = createHttpServer(handler);
  const port = await listen(server);
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return { server, upstream: { name, host: '127.0.0.1', port, ready: true } satisfies Upstream };
}

async function balancer(options: Parameters<typeof createBalancer>[0]): Promise<string> {
  const b = createBalancer(options);
  const port = await listen(b);
  cleanups.push(() => {
    b.closeAllConnections();
    b.close();
  });
  return `127.0.0.1:${port}`;
}

describe('dev balancer against an upstream that does not answer', () => {
  it('gives up on a blackholed node after the connect timeout, marks it not ready and serves from the next', async () => {
    const hole = await blackhole();
    cleanups.push(() => hole.close());
    const dead: Upstream = { name: 'blackholed', host: '127.0.0.1', port: hole.port, ready: true };
    const good = await node('good', (_req, res) => res.end('ok'));
    const errors: string[] = [];
    const addr = await balancer({
      web: () => [dead, good.upstream],
      connectTimeoutMs: 300,
      onError: (err, u) => errors.push(`${u.name}: ${err.message}`),
    });
    const started = Date.now();
    const res = await fetch(`http://${addr}/x`, { method: 'POST', body: 'payload', signal: AbortSignal.timeout(5000) });
    const elapsed = Date.now() - started;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(res.headers.get('x-shoal-upstream')).toBe('good');
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
    expect(dead.ready).toBe(false);
    expect(errors).toEqual([expect.stringMatching(/^blackholed: .*did not accept within 300 ms/)]);
  });

  it('does the same for a WebSocket upgrade: the handshake goes to the next gateway', async () => {
    const hole = await blackhole();
    cleanups.push(() => hole.close());
    const dead: Upstream = { name: 'gw-blackholed', host: '127.0.0.1', port: hole.port, ready: true };
    const gw = createHttpServer();
    const wss = new WebSocketServer({ server: gw });
    wss.on('connection', (ws) => ws.send('hello from gw-good'));
    const port = await listen(gw);
    cleanups.push(() => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      gw.close();
    });
    const addr = await balancer({
      web: () => [],
      gateways: () => [dead, { name: 'gw-good', host: '127.0.0.1', port, ready: true }],
      connectTimeoutMs: 300,
    });
    const started = Date.now();
    const ws = new WebSocket(`ws://${addr}/`);
    const first = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no message within 5 s')), 5000);
      ws.once('message', (d) => {
        clearTimeout(t);
        resolve(String(d));
      });
      ws.once('error', reject);
    });
    ws.close();
    expect(first).toBe('hello from gw-good');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(dead.ready).toBe(false);
  });

  it('answers 504 naming a node that accepted but never responds, marks it not ready, and does not replay', async () => {
    let otherHits = 0;
    const mute = await node('mute', () => {}); // accepts, reads, never answers
    const other = await node('other', (_req, res) => {
      otherHits++;
      res.end('ok');
    });
    const addr = await balancer({ web: () => [mute.upstream, other.upstream], responseTimeoutMs: 300 });
    const started = Date.now();
    const res = await fetch(`http://${addr}/incr/n`, { method: 'POST', signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(504);
    expect(res.headers.get('x-shoal-upstream')).toBe('mute');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(mute.upstream.ready).toBe(false);
    expect(otherHits).toBe(0); // the mute node may have acted on it: replaying could apply it twice
  });

  it('frees the upstream request when the client gives up, without replaying it elsewhere', async () => {
    let upstreamClosed = false;
    let otherHits = 0;
    const slow = await node('slow', (req) => {
      req.socket.once('close', () => {
        upstreamClosed = true;
      });
    });
    const other = await node('other', (_req, res) => {
      otherHits++;
      res.end('ok');
    });
    const addr = await balancer({ web: () => [slow.upstream, other.upstream] });
    await expect(fetch(`http://${addr}/slow`, { signal: AbortSignal.timeout(200) })).rejects.toThrow();
    const deadline = Date.now() + 2000;
    while (!upstreamClosed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(upstreamClosed).toBe(true);
    expect(otherHits).toBe(0);
    expect(slow.upstream.ready).toBe(true); // a client giving up says nothing about the node
  });

  it('still retries a refused connection on the next node', async () => {
    const gone = await node('gone', () => {});
    gone.server.close();
    await new Promise((r) => setTimeout(r, 50));
    const good = await node('good', (_req, res) => res.end('ok'));
    const addr = await balancer({ web: () => [gone.upstream, good.upstream] });
    const res = await fetch(`http://${addr}/`, { signal: AbortSignal.timeout(5000) });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-shoal-upstream')).toBe('good');
    expect(gone.upstream.ready).toBe(false);
  });
});
