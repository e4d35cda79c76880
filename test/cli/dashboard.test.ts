import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter, Histogram, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard, type DashboardState, dashboardNodesFromEnv } from '../../src/cli/dashboard.js';
import { parsePrometheus, summarize } from '../../src/cli/dashboard-metrics.js';
import { bucketIncrease, counterIncrease, histogramQuantile, mergeBuckets } from '../../src/cli/dashboard-ui/math.js';
import { gatewayMetrics } from '../../src/realtime/gateway-metrics.js';
import { chromiumSkipReason, launchChromium, pageProblems } from '../helpers/chromium.js';
import { type DevCluster, startDevCluster } from '../helpers/dev-cluster.js';
import { freePort } from '../helpers/processes.js';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/** A web node's metrics as prom-client writes them (same names and labels as src/core/metrics.ts). */
function webRegistry() {
  const registry = new Registry();
  const requests = new Counter({
    name: 'shoal_http_requests_total',
    help: 'h',
    labelNames: ['method', 'status'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'shoal_store_latency_seconds',
    help: 'h',
    labelNames: ['op'],
    buckets: [0.001, 0.005, 0.01, 0.25],
    registers: [registry],
  });
  const conflicts = new Counter({ name: 'shoal_session_conflicts_total', help: 'h', registers: [registry] });
  const calls = new Counter({
    name: 'shoal_store_calls_total',
    help: 'h',
    labelNames: ['op', 'outcome'],
    registers: [registry],
  });
  return { registry, requests, latency, conflicts, calls };
}

describe('dashboard metrics', () => {
  it('reads prom-client output: sums across labels, merges histogram buckets across operations', async () => {
    const w = webRegistry();
    w.requests.inc({ method: 'GET', status: '200' }, 7);
    w.requests.inc({ method: 'POST', status: '503' }, 2);
    w.conflicts.inc(3);
    w.calls.inc({ op: 'create', outcome: 'ok' }, 4);
    w.calls.inc({ op: 'create', outcome: 'error' }, 9);
    for (let i = 0; i < 99; i++) w.latency.observe({ op: 'load' }, 0.003);
    w.latency.observe({ op: 'commit' }, 0.2);
    const m = summarize(parsePrometheus(await w.registry.metrics()));
    expect(m).toMatchObject({ requests: 9, conflicts: 3, sessionsCreated: 4, sockets: 0, messagesOut: 0 });
    expect(Object.fromEntries(m.storeLatency)).toEqual({
      '0.001': 0,
      '0.005': 99,
      '0.01': 99,
      '0.25': 100,
      '+Inf': 100,
    });
    // 99 of 100 calls took ≤ 5 ms: p99 is at that bucket's bound; the median interpolates inside it.
    expect(histogramQuantile(0.99, m.storeLatency)).toBeCloseTo(0.005, 9);
    expect(histogramQuantile(0.5, m.storeLatency)).toBeCloseTo(0.001 + (0.004 * 50) / 99, 9);
    expect(histogramQuantile(1, m.storeLatency)).toBeCloseTo(0.25, 9);

    const g = gatewayMetrics(new Registry());
    g.connections.set(5);
    g.messagesOut.inc(12);
    expect(summarize(parsePrometheus(await g.render()))).toMatchObject({ sockets: 5, messagesOut: 12, requests: 0 });
  });

  it('parses escaped label values and skips what is not a sample', () => {
    const samples = parsePrometheus(
      '# HELP x y\n# TYPE x counter\nx{path="/a\\"b",le="+Inf"} 4\nbroken line here\ny 2.5 1700000000000\n',
    );
    expect(samples).toEqual([
      { name: 'x', labels: { path: '/a"b', le: '+Inf' }, value: 4 },
      { name: 'y', labels: {}, value: 2.5 },
    ]);
  });

  it('rates survive a process restart (counters start again from zero)', () => {
    expect(counterIncrease(undefined, 10)).toBe(0);
    expect(counterIncrease(10, 15)).toBe(5);
    expect(counterIncrease(15, 3)).toBe(3);
    const before: Array<[string, number]> = [
      ['0.01', 5],
      ['+Inf', 6],
    ];
    expect(
      bucketIncrease(before, [
        ['0.01', 7],
        ['+Inf', 9],
      ]),
    ).toEqual([
      ['0.01', 2],
      ['+Inf', 3],
    ]);
    expect(
      bucketIncrease(before, [
        ['0.01', 1],
        ['+Inf', 1],
      ]),
    ).toEqual([
      ['0.01', 1],
      ['+Inf', 1],
    ]);
    expect(
      mergeBuckets([
        [
          ['+Inf', 2],
          ['0.01', 1],
        ],
        [
          ['0.01', 3],
          ['+Inf', 4],
        ],
      ]),
    ).toEqual([
      ['0.01', 4],
      ['+Inf', 6],
    ]);
    expect(histogramQuantile(0.99, [['+Inf', 0]])).toBeNull();
  });

  it('reads SHOAL_DASHBOARD_NODES and says what is wrong with a bad entry', () => {
    expect(dashboardNodesFromEnv('web/web-1=http://10.0.0.5:3000, gateway/gw-a=http://rt.internal:4000')).toEqual([
      { role: 'web', name: 'web-1', host: '10.0.0.5', port: 3000 },
      { role: 'gateway', name: 'gw-a', host: 'rt.internal', port: 4000 },
    ]);
    expect(dashboardNodesFromEnv(undefined)).toEqual([]);
    expect(() => dashboardNodesFromEnv('web-1=http://x:1')).toThrow(/role\/name=http/);
  });
});

describe('dashboard server', () => {
  const servers: Server[] = [];
  let victim: ChildProcess;
  let webPort = 0;
  let gatewayPort = 0;
  let deadPort = 0;

  beforeAll(async () => {
    const w = webRegistry();
    w.requests.inc({ method: 'GET', status: '200' }, 3);
    const g = gatewayMetrics(new Registry());
    g.connections.set(2);
    const web = createServer((req, res) => {
      if (req.url === '/metrics') void w.registry.metrics().then((t) => res.end(t));
      else if (req.url === '/readyz') res.writeHead(503).end(JSON.stringify({ ready: false, problem: 'draining' }));
      else res.writeHead(404).end();
    });
    const gateway = createServer((req, res) => {
      if (req.url === '/metrics') void g.render().then((t) => res.end(t));
      else if (req.url === '/readyz') res.end(JSON.stringify({ ready: true }));
      else res.writeHead(404).end();
    });
    servers.push(web, gateway);
    [webPort, gatewayPort, deadPort] = await Promise.all([listen(web), listen(gateway), freePort()]);
    victim = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  });

  afterAll(async () => {
    victim.kill('SIGKILL');
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  async function serve(options: Parameters<typeof createDashboard>[0]): Promise<string> {
    const handle = createDashboard(options);
    const server = createServer((req, res) => {
      if (!handle(req, res)) res.writeHead(418).end('not the dashboard');
    });
    servers.push(server);
    return `http://127.0.0.1:${await listen(server)}`;
  }

  const nodes = () => [
    { name: 'web-1', role: 'web' as const, host: '127.0.0.1', port: webPort },
    { name: 'gateway-1', role: 'gateway' as const, host: '127.0.0.1', port: gatewayPort },
    { name: 'web-2', role: 'web' as const, host: '127.0.0.1', port: deadPort },
  ];

  it('with a token: the page is public, the data needs the bearer token', async () => {
    const base = await serve({ nodes, token: 'sekret-token' });
    const page = await fetch(`${base}/_shoal/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('ops dashboard');
    expect((await fetch(`${base}/_shoal`, { redirect: 'manual' })).headers.get('location')).toBe('/_shoal/');
    expect((await fetch(`${base}/elsewhere`)).status).toBe(418);
    expect((await fetch(`${base}/_shoal/api/state`)).status).toBe(401);
    const wrong = await fetch(`${base}/_shoal/api/state`, { headers: { authorization: 'Bearer sekret-tokem' } });
    expect(wrong.status).toBe(401);
    const res = await fetch(`${base}/_shoal/api/state`, { headers: { authorization: 'Bearer sekret-token' } });
    expect(res.status).toBe(200);
    const state = (await res.json()) as DashboardState;
    expect(state.canSignal).toBe(false);
    const byName = Object.fromEntries(state.nodes.map((n) => [n.name, n]));
    expect(byName['web-1']).toMatchObject({ state: 'draining', metrics: { requests: 3 } });
    expect(byName['gateway-1']).toMatchObject({ state: 'ready', metrics: { sockets: 2 } });
    expect(byName['web-2']).toMatchObject({ state: 'dead', metrics: null });
    expect(byName['web-2']?.error).toBeTruthy();
    // No supervisor, no kill buttons.
    const kill = await fetch(`${base}/_shoal/api/nodes/web-1/signal`, {
      method: 'POST',
      headers: { authorization: 'Bearer sekret-token', 'content-type': 'application/json' },
      body: '{"signal":"SIGKILL"}',
    });
    expect(kill.status).toBe(404);
  });

  it('leaves a request target that is no URL to the server instead of throwing', async () => {
    const base = await serve({ nodes, token: 'sekret-token' });
    const { port } = new URL(base);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () =>
        socket.write('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      let text = '';
      socket.on('data', (d) => {
        text += d;
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 418 /);
    expect((await fetch(`${base}/_shoal/`)).status).toBe(200);
  });

  it('in a local cluster: the kill button signals the node, and only from the dashboard’s own origin', async () => {
    const signalled: string[] = [];
    const base = await serve({
      nodes,
      signal: (name, sig) => {
        signalled.push(`${name} ${sig}`);
        return victim.kill(sig);
      },
    });
    const post = (body: string, headers: Record<string, string>) =>
      fetch(`${base}/_shoal/api/nodes/web-1/signal`, { method: 'POST', headers, body });
    expect((await post('signal=SIGKILL', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect(
      (await post('{"signal":"SIGKILL"}', { 'content-type': 'application/json', origin: 'https://evil.example' }))
        .status,
    ).toBe(403);
    expect((await post('{"signal":"SIGHUP"}', { 'content-type': 'application/json' })).status).toBe(400);
    const unknown = await fetch(`${base}/_shoal/api/nodes/web-9/signal`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"signal":"SIGTERM"}',
    });
    expect(unknown.status).toBe(404);
    expect(signalled).toEqual([]);

    const exited = new Promise<NodeJS.Signals | null>((r) => victim.once('exit', (_c, s) => r(s)));
    const ok = await post('{"signal":"SIGTERM"}', { 'content-type': 'application/json', origin: base });
    expect(ok.status).toBe(200);
    expect(await exited).toBe('SIGTERM');
    expect(signalled).toEqual(['web-1 SIGTERM']);
    // The process is gone: a second signal reports it.
    expect((await post('{"signal":"SIGKILL"}', { 'content-type': 'application/json' })).status).toBe(409);
  });
});

/** `shoal start` takes `port` for its balancer and the next ones for its nodes: find two free in a row. */
async function freePortPair(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = createNetServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await free(port)) && (await free(port + 1))) return port;
  }
  throw new Error('no two free ports in a row');
}

describe('dashboard in the dev cluster (shoal start)', () => {
  const TOKEN = 'dev-cluster-dashboard-token';
  let cluster: DevCluster | undefined;
  let dir = '';
  let port = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-dash-start-'));
    port = await freePortPair();
    const db = `sqlite:${join(dir, 'dev.db')}`;
    cluster = await startDevCluster({
      app: 'examples/probe/shoal.app.ts',
      web: 1,
      gateways: 0,
      port,
      timeoutMs: 30_000,
      env: {
        SHOAL_STORE: db,
        SHOAL_BUS: db,
        SHOAL_SECRETS: 'dev-cluster-dashboard-secret-0123456789abcdef',
        SHOAL_DASHBOARD_TOKEN: TOKEN,
      },
    });
  }, 40_000);

  afterAll(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the balancer answers /_shoal/ (with kill buttons); its web nodes leave /_shoal/ to the app', async () => {
    const base = (cluster as DevCluster).url;
    const auth = { headers: { authorization: `Bearer ${TOKEN}` } };

    expect((await fetch(`${base}/_shoal/api/state`)).status).toBe(401);
    const res = await fetch(`${base}/_shoal/api/state`, auth);
    expect(res.status).toBe(200);
    const state = (await res.json()) as DashboardState;
    expect(state.canSignal).toBe(true);
    expect(state.nodes.map((n) => [n.name, n.state])).toEqual([['web-1', 'ready']]);
    const page = await fetch(`${base}/_shoal/`);
    expect(page.headers.get('x-shoal-node')).toBeNull();
    expect(await page.text()).toContain('ops dashboard');

    // The node itself, asked directly, serves no dashboard of its own: the probe app answers.
    const direct = await fetch(`http://127.0.0.1:${port + 1}/_shoal/api/state`, auth);
    expect(direct.status).toBe(404);
    expect(direct.headers.get('x-shoal-node')).toBe('web-1');
  });

  // The app behind the balancer has no icon (the probe answers 404, as most apps do): the page must
  // not send the browser looking for one there.
  it.skipIf(chromiumSkipReason())(
    'the page loads in Chromium without a failed request or a console error',
    async () => {
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const problems = pageProblems(page);
        await page.goto(`${(cluster as DevCluster).url}/_shoal/`);
        await page.getByLabel('Dashboard token (SHOAL_DASHBOARD_TOKEN)').fill(TOKEN);
        await page.getByRole('button', { name: 'Open' }).click();
        await expect.poll(() => page.getByTestId('state-web-1').textContent(), { timeout: 10_000 }).toBe('ready');
        // A browser asks for an icon after the page has loaded: give it the time to have asked.
        await page.waitForTimeout(1000);
        expect(problems()).toEqual([]);
      } finally {
        await browser.close();
      }
    },
    30_000,
  );

  it.skipIf(chromiumSkipReason())(
    'a wrong token is said to be refused, and the form asks again',
    async () => {
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        await page.goto(`${(cluster as DevCluster).url}/_shoal/`);
        await expect.poll(() => page.locator('#summary').textContent()).toBe('This dashboard needs its token.');
        await page.getByLabel('Dashboard token (SHOAL_DASHBOARD_TOKEN)').fill('not-the-token');
        await page.getByRole('button', { name: 'Open' }).click();
        await expect
          .poll(() => page.locator('#summary').textContent(), { timeout: 10_000 })
          .toBe('That token was refused: enter the dashboard token (SHOAL_DASHBOARD_TOKEN).');
        await page.getByLabel('Dashboard token (SHOAL_DASHBOARD_TOKEN)').fill(TOKEN);
        await page.getByRole('button', { name: 'Open' }).click();
        await expect.poll(() => page.getByTestId('state-web-1').textContent(), { timeout: 10_000 }).toBe('ready');
      } finally {
        await browser.close();
      }
    },
    30_000,
  );
});
