import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { startNode, stopAll } from '../helpers/processes.js';

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

const web = (name: string) =>
  startNode({
    name,
    script: 'src/cli/main.ts',
    args: ['web', '--app', 'examples/probe/shoal.app.ts'],
    env,
    readyPath: '/readyz',
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
