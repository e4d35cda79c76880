import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type DevCluster, startDevCluster } from '../helpers/dev-cluster.js';
import { freePortRun } from '../helpers/processes.js';

/**
 * A web node of `shoal start` stopped with SIGTERM (a `kill`, the dashboard's button) under traffic:
 * the dev balancer learns it is draining from its readiness within 500 ms, so the node must keep
 * serving that long before it closes anything, or a POST the balancer writes into a connection the
 * node is closing is lost (a 502 no balancer may replay).
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-start-drain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';
const APP = join(dir, 'pid.app.mjs');
writeFileSync(APP, 'export default { web: () => (req, res) => res.end(String(process.pid)) };\n');

let cluster: DevCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe('shoal start: a web node stopped with SIGTERM under traffic', () => {
  it('drains without failing a request through the balancer', async () => {
    const port = await freePortRun(4);
    cluster = await startDevCluster({
      app: APP,
      web: 3,
      port,
      cwd: dir,
      env: { SHOAL_STORE: `sqlite:${join(dir, `${port}.db`)}`, SHOAL_SECRETS: SECRET },
    });
    const url = cluster.url;
    const pids = new Map<string, number>();
    for (let i = 0; i < 30 && pids.size < 3; i++) {
      const res = await fetch(`${url}/`, { method: 'POST', body: 'x' });
      pids.set(res.headers.get('x-shoal-upstream') ?? '', Number(await res.text()));
    }
    const victim = pids.get('web-1');
    expect(victim, JSON.stringify([...pids])).toBeGreaterThan(0);

    const statuses = new Map<number, number>();
    const until = Date.now() + 3000;
    const worker = async () => {
      for (let n = 0; n < 5000 && Date.now() < until; n++) {
        const res = await fetch(`${url}/`, { method: 'POST', body: 'x' }).catch(() => null);
        const status = res?.status ?? 0;
        await res?.text();
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    };
    const load = Promise.all(Array.from({ length: 10 }, worker));
    await new Promise((r) => setTimeout(r, 1000));
    process.kill(victim as number, 'SIGTERM');
    await load;

    expect(Object.fromEntries(statuses)).toEqual({ 200: expect.any(Number) });
    expect(statuses.get(200)).toBeGreaterThan(100);
    // It drained, rather than being cut: its log says so.
    const deadline = Date.now() + 10_000;
    while (!/web-1\s.*"msg":"drained"/.test(cluster.output()) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(cluster.output()).toMatch(/web-1\s.*"abandoned":0.*"msg":"drained"|web-1\s.*"msg":"drained".*"abandoned":0/);
  }, 90_000);
});
