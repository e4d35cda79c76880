import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DashboardState } from '../../src/cli/dashboard.js';
import { CookieJar } from '../helpers/cookie-jar.js';
import { BUILT_ENV, CLI, captureOutput, freePort, ROOT, startNode, stopAll } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'shoal-webnode-'));
const env = {
  SHOAL_STORE: `sqlite:${join(dir, 'web.db')}`,
  SHOAL_SECRETS: 'web-node-test-secret-0123456789abcdefghijk',
  SHOAL_DRAIN_TIMEOUT: '5s',
  SHOAL_DRAIN_DELAY: '300ms',
};

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

const web = (name: string, more: { env?: Record<string, string>; args?: string[]; port?: number } = {}) =>
  startNode({
    name,
    script: CLI,
    args: ['web', '--app', 'examples/probe/shoal.app.ts', ...(more.args ?? [])],
    env: { ...env, ...more.env },
    readyPath: '/readyz',
    ...(more.port ? { port: more.port } : {}),
  });

describe('shoal web', () => {
  it('serves the app with /healthz, /readyz and Prometheus /metrics', async () => {
    const node = await web('web-metrics');
    const browser = new CookieJar();
    await browser.fetch(`${node.url}/incr/n`, { method: 'POST' });
    await browser.fetch(`${node.url}/session`);
    expect(await (await fetch(`${node.url}/healthz`)).json()).toMatchObject({ ok: true, node: 'web-metrics' });
    expect(await (await fetch(`${node.url}/readyz`)).json()).toMatchObject({ ready: true });
    const text = await (await fetch(`${node.url}/metrics`)).text();
    expect(text).toMatch(/shoal_http_requests_total\{method="POST",status="200"\} 1/);
    expect(text).toMatch(/shoal_store_calls_total\{op="commit",outcome="ok"\} [1-9]/);
    expect(text).toMatch(/shoal_store_latency_seconds_bucket\{le="[\d.]+",op="load"\}/);
    expect(text).toMatch(/process_resident_memory_bytes/);
    await node.stop('SIGTERM');
  });

  it('drains on SIGTERM: readiness false first, in-flight requests finish, then it exits', async () => {
    const node = await web('web-drain');
    // A request that is still running when SIGTERM arrives.
    const slow = fetch(`${node.url}/slow?ms=1500`).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 200));
    const exited = new Promise<number | null>((resolve) => node.child.once('exit', (code) => resolve(code)));
    const t0 = Date.now();
    node.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const ready = await fetch(`${node.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, problem: 'draining' });
    const res = await slow;
    expect(res).toBeInstanceOf(Response);
    expect((res as Response).status).toBe(200);
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(node.output()).toMatch(/"msg":"drained"/);
  });
});

describe('shoal web: the ops dashboard at /_shoal/', () => {
  const TOKEN = 'web-node-dashboard-token-0123';
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  /** Every GET this node counted in shoal_http_requests_total, whatever its status. */
  const countedGets = async (url: string) =>
    [
      ...(await (await fetch(`${url}/metrics`)).text()).matchAll(
        /^shoal_http_requests_total\{method="GET",[^}]*\} (\d+)/gm,
      ),
    ]
      .map((m) => Number(m[1]))
      .reduce((a, b) => a + b, 0);

  it('with a token: public page, the API needs the bearer token and shows every listed node', async () => {
    const p1 = await freePort();
    let p2 = await freePort();
    while (p2 === p1) p2 = await freePort();
    const list = `web/web-dash-1=http://127.0.0.1:${p1},web/web-dash-2=http://127.0.0.1:${p2}`;
    const [a, b] = await Promise.all([
      // The flag wins over the environment (which here names this node alone).
      web('web-dash-1', {
        port: p1,
        args: ['--dashboard-nodes', list],
        env: { SHOAL_DASHBOARD_TOKEN: TOKEN, SHOAL_DASHBOARD_NODES: `web/web-dash-1=http://127.0.0.1:${p1}` },
      }),
      web('web-dash-2', { port: p2, env: { SHOAL_DASHBOARD_TOKEN: TOKEN, SHOAL_DASHBOARD_NODES: list } }),
    ]);

    const before = await countedGets(a.url);
    const page = await fetch(`${a.url}/_shoal/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('x-shoal-node')).toBeNull(); // answered by the runtime, not the app
    expect(await page.text()).toContain('ops dashboard');
    expect((await fetch(`${a.url}/_shoal/api/state`)).status).toBe(401);
    expect((await fetch(`${a.url}/_shoal/api/state`, bearer(`${TOKEN}x`))).status).toBe(401);
    expect((await fetch(`${a.url}/_shoal/api/state`, bearer(TOKEN.slice(0, -1)))).status).toBe(401);
    // Only the first /metrics request counts: the dashboard's own requests are not app traffic.
    expect((await countedGets(a.url)) - before).toBe(1);

    for (const node of [a, b]) {
      const res = await fetch(`${node.url}/_shoal/api/state`, bearer(TOKEN));
      expect(res.status).toBe(200);
      const state = (await res.json()) as DashboardState;
      expect(state.canSignal).toBe(false);
      expect(state.nodes.map((n) => n.name).sort()).toEqual(['web-dash-1', 'web-dash-2']);
      for (const n of state.nodes) {
        expect(n, n.name).toMatchObject({ role: 'web', state: 'ready' });
        expect(n.metrics?.requests, n.name).toBeGreaterThan(0); // at least the readiness polls
      }
    }
    // No supervisor here: no kill buttons, and the signal endpoint refuses.
    const kill = await fetch(`${a.url}/_shoal/api/nodes/web-dash-2/signal`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: '{"signal":"SIGKILL"}',
    });
    expect(kill.status).toBe(404);
    expect(b.child.exitCode).toBeNull();
    await Promise.all([a.stop(), b.stop()]);
  });

  it('with a token and no node list: watches itself', async () => {
    const node = await web('web-dash-self', { env: { SHOAL_DASHBOARD_TOKEN: `  ${TOKEN}\n` } });
    const res = await fetch(`${node.url}/_shoal/api/state`, bearer(TOKEN));
    expect(res.status).toBe(200);
    const state = (await res.json()) as DashboardState;
    expect(state.nodes).toHaveLength(1);
    expect(state.nodes[0]).toMatchObject({ name: 'web-dash-self', role: 'web', port: node.port, state: 'ready' });
    expect(state.nodes[0]?.metrics?.requests).toBeGreaterThan(0);
    await node.stop();
  });

  it('without a token: /_shoal/ is the app’s', async () => {
    const node = await web('web-dash-off', { env: { SHOAL_DASHBOARD_TOKEN: '' } });
    for (const path of ['/_shoal/', '/_shoal/api/state']) {
      const res = await fetch(`${node.url}${path}`, bearer(TOKEN));
      expect(res.status, path).toBe(404);
      expect(res.headers.get('x-shoal-node'), path).toBe('web-dash-off'); // the probe app answered
    }
    await node.stop();
  });

  it('a token shorter than 16 characters stops the node with a message saying what to do', async () => {
    const child = spawn(process.execPath, [CLI, 'web', '--app', 'examples/probe/shoal.app.ts', '--port', '0'], {
      cwd: ROOT,
      env: { ...process.env, ...BUILT_ENV, ...env, SHOAL_DASHBOARD_TOKEN: 'short-token' },
      stdio: 'pipe',
    });
    const out = captureOutput(child);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    clearTimeout(timer);
    expect(code).toBe(78); // a configuration error: supervisors do not restart it
    expect(out()).toContain('SHOAL_DASHBOARD_TOKEN is 11 characters long');
    expect(out()).toMatch(/at least 16/);
    expect(out()).toMatch(/unset it to turn the dashboard off/);
  });
});
