/**
 * RPC round trip through one gateway: a `ws` client sends `rpc` frames one at a time and times
 * each reply, for an in-process handler and for the RPC proxy (a local Node HTTP app). Then the
 * extra cost of the connect proxy per connection: time from opening a WebSocket to `hello`, with
 * shoal's session cookie vs. with the connect proxy asking the local app.
 *
 * Everything runs in this one process (gateway, app, client) on the memory bus, so the figures
 * are the gateway's own cost plus one loopback hop, on a machine shared with other work.
 *
 * `npx tsx bench/rpc-latency.ts [--calls 2000] [--connects 200] [--rounds 3]`
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { memoryBus } from '../src/bus/memory.js';
import { silentLogger } from '../src/core/logger.js';
import { createGateway, type GatewayOptions } from '../src/realtime/gateway.js';
import { SessionManager } from '../src/session/manager.js';
import { memoryStore } from '../src/stores/memory.js';

const { values } = parseArgs({
  options: { calls: { type: 'string' }, connects: { type: 'string' }, rounds: { type: 'string' } },
});
const CALLS = Number(values.calls ?? 2000);
const CONNECTS = Number(values.connects ?? 200);
const ROUNDS = Number(values.rounds ?? 3);
const ORIGIN = 'http://bench.local';

const sessions = new SessionManager({
  store: memoryStore(),
  secrets: ['rpc-bench-secret-0123456789abcdefghij'],
  cookie: { secure: false },
  sweep: { enabled: false },
});
const app = createServer((req, res) => {
  let body = '';
  req.on('data', (c: Buffer) => {
    body += c.toString();
  });
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    // The connect proxy asks with {transport}; the RPC proxy with {method, data}.
    const b = JSON.parse(body) as { data?: unknown; method?: string };
    res.end(JSON.stringify(b.method ? { result: b.data } : { user: 'bench' }));
  });
});
await new Promise<void>((r) => app.listen(0, '127.0.0.1', () => r()));
const appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}/`;

async function gateway(extra: Partial<GatewayOptions>) {
  const gw = await createGateway({
    bus: memoryBus({ namespace: `rpc-bench-${Math.random()}` }),
    sessions,
    origins: [ORIGIN],
    logger: silentLogger,
    rpc: { echo: (_ctx, data) => data },
    requestLimits: { perSecond: 1_000_000 },
    rateLimit: 1_000_000,
    ...extra,
  });
  await gw.listen(0);
  return { gw, url: `ws://127.0.0.1:${(gw.server.address() as AddressInfo).port}/ws` };
}

async function cookie(): Promise<string> {
  const s = sessions.open(undefined);
  s.setUser('bench');
  await s.commit();
  return (sessions.setCookieHeader(s) as string).split(';')[0] as string;
}

/** Opens a socket and resolves once `hello` arrived, with the time it took. */
function open(url: string, headers: Record<string, string>): Promise<{ ws: WebSocket; ms: number }> {
  const t0 = performance.now();
  const ws = new WebSocket(url, { headers: { origin: ORIGIN, ...headers }, perMessageDeflate: false });
  return new Promise((resolve, reject) => {
    ws.once('message', () => resolve({ ws, ms: performance.now() - t0 }));
    ws.once('error', reject);
  });
}

async function roundTrips(url: string, headers: Record<string, string>, method: string): Promise<number[]> {
  const { ws } = await open(url, headers);
  const times: number[] = [];
  let resolveReply: (() => void) | undefined;
  ws.on('message', (d: Buffer) => {
    if (d.toString().startsWith('{"type":"reply"')) resolveReply?.();
  });
  for (let id = 1; id <= CALLS; id++) {
    const t0 = performance.now();
    const replied = new Promise<void>((r) => {
      resolveReply = r;
    });
    ws.send(JSON.stringify({ type: 'rpc', id, method, data: { n: id } }));
    await replied;
    times.push(performance.now() - t0);
  }
  ws.close();
  return times;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};
const fmt = (x: number) => x.toFixed(3);

const rows: string[] = [];
const plain = await gateway({ rpcProxy: { url: appUrl } });
const proxied = await gateway({ connectProxy: { url: appUrl } });
const c = await cookie();
for (let round = 1; round <= ROUNDS; round++) {
  const inProcess = await roundTrips(plain.url, { cookie: c }, 'echo');
  const viaProxy = await roundTrips(plain.url, { cookie: c }, 'remote.echo');
  const connectCookie: number[] = [];
  const connectProxy: number[] = [];
  for (let i = 0; i < CONNECTS; i++) {
    const a = await open(plain.url, { cookie: c });
    connectCookie.push(a.ms);
    a.ws.close();
    const b = await open(proxied.url, { cookie: c });
    connectProxy.push(b.ms);
    b.ws.close();
  }
  for (const [name, xs] of [
    ['rpc in-process', inProcess],
    ['rpc via proxy', viaProxy],
    ['connect, cookie', connectCookie],
    ['connect, connect proxy', connectProxy],
  ] as const) {
    rows.push(`| ${round} | ${name} | ${xs.length} | ${fmt(pct(xs, 50))} | ${fmt(pct(xs, 99))} |`);
  }
}
console.log('| round | what | n | p50 ms | p99 ms |\n|---|---|---|---|---|');
console.log(rows.join('\n'));
await plain.gw.close();
await proxied.gw.close();
await sessions.close();
app.close();
