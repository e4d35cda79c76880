import { spawn } from 'node:child_process';
import {
  createServer as createHttpServer,
  get,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createBalancer, type Upstream } from '../../src/cli/balancer.js';
import { requestOfferingH2c } from '../helpers/h2c-offer.js';

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

/** How a response read through the balancer finished: cleanly, cut, or not at all within `waitMs`. */
function readToTheEnd(
  url: string,
  headers: Record<string, string>,
  waitMs = 5000,
): Promise<{ status: number; body: string; how: 'end' | 'cut' | 'still open'; afterFirstByteMs: number }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { headers }, (res) => {
      let body = '';
      let first = 0;
      let settled = false;
      const done = (how: 'end' | 'cut' | 'still open') => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body, how, afterFirstByteMs: first ? Date.now() - first : -1 });
      };
      const timer = setTimeout(() => done('still open'), waitMs);
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        first ||= Date.now();
        body += d;
      });
      res.on('end', () => done(res.complete ? 'end' : 'cut'));
      res.on('error', () => done('cut'));
      res.on('close', () => done(res.complete ? 'end' : 'cut'));
    });
    req.on('error', reject);
  });
}

describe('dev balancer when an upstream dies mid-response', () => {
  it('cuts an SSE stream whose gateway process is SIGKILLed, at once', async () => {
    // A real process holding a real event stream, killed the way a crashed gateway dies.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const s = require('node:http').createServer((req, res) => {
           res.writeHead(200, { 'content-type': 'text/event-stream' });
           res.write('data: first\\n\\n');
           process.stdout.write('streaming\\n');
         });
         s.listen(0, '127.0.0.1', () => process.stdout.write('port ' + s.address().port + '\\n'));`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(() => void child.kill('SIGKILL'));
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
    });
    const deadline = Date.now() + 10_000;
    while (!/port \d+/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const port = Number(/port (\d+)/.exec(out)?.[1]);
    const gw: Upstream = { name: 'gw-doomed', host: '127.0.0.1', port, ready: true };
    const addr = await balancer({ web: () => [], gateways: () => [gw] });
    const reading = readToTheEnd(`http://${addr}/sse`, { accept: 'text/event-stream' });
    while (!out.includes('streaming') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100)); // the first event is on its way to the client
    const killedAt = Date.now();
    child.kill('SIGKILL');
    const r = await reading;
    expect(r.status).toBe(200);
    expect(r.body).toBe('data: first\n\n');
    expect(r.how).toBe('cut');
    expect(Date.now() - killedAt).toBeLessThan(1000);
  });

  /** A raw upstream: sends `head` and `part` of a response, then drops the connection. */
  async function dying(head: string, part: string) {
    const server = createTcpServer((s) => {
      s.once('data', () => {
        s.write(head + part);
        setTimeout(() => s.destroy(), 100);
      });
    });
    const port = await listen(server as unknown as Server);
    cleanups.push(() => void server.close());
    return { name: 'dying', host: '127.0.0.1', port, ready: true } satisfies Upstream;
  }

  it('cuts a chunked response whose upstream drops mid-body, instead of ending it as if complete', async () => {
    const up = await dying('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n', '5\r\nhello\r\n');
    const addr = await balancer({ web: () => [up] });
    const r = await readToTheEnd(`http://${addr}/report`, {});
    expect(r).toMatchObject({ status: 200, body: 'hello', how: 'cut' });
    expect(r.afterFirstByteMs).toBeLessThan(1000);
  });

  it('cuts a response shorter than its content-length', async () => {
    const up = await dying('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n', 'only ten b');
    const addr = await balancer({ web: () => [up] });
    const r = await readToTheEnd(`http://${addr}/file`, {});
    expect(r).toMatchObject({ status: 200, body: 'only ten b', how: 'cut' });
    expect(r.afterFirstByteMs).toBeLessThan(1000);
  });

  it('still ends a complete response cleanly', async () => {
    const good = await node('good', (_req, res) => {
      res.write('a');
      setTimeout(() => res.end('b'), 50);
    });
    const addr = await balancer({ web: () => [good.upstream] });
    expect(await readToTheEnd(`http://${addr}/`, {})).toMatchObject({ status: 200, body: 'ab', how: 'end' });
  });

  it('closes a tunnelled WebSocket when its gateway drops the connection', async () => {
    const gw = createHttpServer();
    const wss = new WebSocketServer({ server: gw });
    wss.on('connection', (ws, req) => {
      ws.send('hi');
      setTimeout(() => req.socket.destroy(), 100); // no close frame: the process died
    });
    const port = await listen(gw);
    cleanups.push(() => {
      wss.close();
      gw.close();
    });
    const addr = await balancer({
      web: () => [],
      gateways: () => [{ name: 'gw', host: '127.0.0.1', port, ready: true }],
    });
    const ws = new WebSocket(`ws://${addr}/ws`);
    ws.on('error', () => {});
    await new Promise((r) => ws.once('message', r));
    const t0 = Date.now();
    const code = await new Promise<number>((resolve) => {
      const timer = setTimeout(() => resolve(-1), 5000);
      ws.once('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code).toBe(1006);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

describe('dev balancer routing', () => {
  it('routes like deploy/nginx/shoal.conf: /sse to a gateway, an app’s own event stream to a web node', async () => {
    const web = await node('web', (_req, res) => res.end('web'));
    const gw = await node('gw', (_req, res) => res.end('gateway'));
    const addr = await balancer({ web: () => [web.upstream], gateways: () => [gw.upstream] });
    const via = async (path: string, headers: Record<string, string> = {}) =>
      (await fetch(`http://${addr}${path}`, { headers, signal: AbortSignal.timeout(5000) })).text();
    expect(await via('/sse?channels=room:a')).toBe('gateway');
    expect(await via('/sse', { accept: 'text/event-stream' })).toBe('gateway');
    expect(await via('/events', { accept: 'text/event-stream' })).toBe('web');
    expect(await via('/ws/sse', { accept: 'text/event-stream' })).toBe('web'); // nginx routes only = /sse
    expect(await via('/')).toBe('web');
  });

  it('serves a request offering h2c (Java’s HttpClient) as the web or gateway request it is, not as a WebSocket', async () => {
    const echo = (name: string) => (req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c;
      });
      req.on('end', () => res.end(`${name} ${req.method} ${req.url} ${body} upgrade=${req.headers.upgrade ?? 'none'}`));
    };
    const web = await node('web', echo('web'));
    const gw = await node('gw', echo('gateway'));
    const addr = await balancer({ web: () => [web.upstream], gateways: () => [gw.upstream] });
    const login = await requestOfferingH2c(`http://${addr}/login`, 'POST', {}, 'user=ada');
    expect(login).toMatchObject({ status: 200, body: 'web POST /login user=ada upgrade=none' });
    const sse = await requestOfferingH2c(`http://${addr}/sse`, 'POST', {}, '{"type":"history"}');
    expect(sse).toMatchObject({ status: 200, body: 'gateway POST /sse {"type":"history"} upgrade=none' });
  });
});
