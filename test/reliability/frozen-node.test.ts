import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createBalancer, type Upstream } from '../../src/cli/balancer.js';
import { CookieJar } from '../helpers/cookie-jar.js';
import { type NodeProcess, startNode, stopAll } from '../helpers/processes.js';

/**
 * A web node that stops answering without dying (SIGSTOP: a GC pause gone wrong, a stuck event loop,
 * a VM frozen by its host). The balancer must time it out, stop sending to it, and take it back after
 * SIGCONT; the session must never lose an acknowledged write.
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-frozen-'));
let balancer: Server | undefined;
let poller: NodeJS.Timeout | undefined;

afterAll(async () => {
  clearInterval(poller);
  balancer?.close();
  balancer?.closeAllConnections();
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('a SIGSTOPped web node behind the dev balancer', () => {
  it('is timed out and skipped while frozen, serves again after SIGCONT, and no acknowledged write is lost', async () => {
    const env = {
      SHOAL_STORE: `sqlite:${join(dir, 'frozen.db')}`,
      SHOAL_SECRETS: 'frozen-node-secret-0123456789abcdefghijkl',
    };
    const nodes: NodeProcess[] = await Promise.all(
      [1, 2, 3].map((i) => startNode({ name: `frozen-web${i}`, script: 'examples/probe/server.ts', env })),
    );
    const upstreams: Upstream[] = nodes.map((n) => ({ name: n.name, host: '127.0.0.1', port: n.port, ready: true }));
    // What the supervisor / nginx health checks do: a node that does not answer /healthz quickly is out.
    poller = setInterval(() => {
      for (const u of upstreams) {
        fetch(`http://127.0.0.1:${u.port}/healthz`, { signal: AbortSignal.timeout(300) }).then(
          (r) => {
            u.ready = r.ok;
          },
          () => {
            u.ready = false;
          },
        );
      }
    }, 200);
    balancer = createBalancer({ web: () => upstreams, connectTimeoutMs: 500, responseTimeoutMs: 1000 });
    await new Promise<void>((resolve) => balancer?.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(balancer.address() as { port: number }).port}`;

    const browser = new CookieJar();
    expect((await browser.fetch(`${url}/login?user=frozen`, { method: 'POST' })).status).toBe(200);
    const victim = nodes[1] as NodeProcess;
    let ok = 0;
    let failed = 0;
    let slowest = 0;
    const served = new Set<string>();
    const deadline = Date.now() + 15_000;
    for (let i = 0; i < 120 && Date.now() < deadline; i++) {
      if (i === 30) victim.child.kill('SIGSTOP');
      if (i === 90) victim.child.kill('SIGCONT');
      const t0 = Date.now();
      const res = await browser.fetch(`${url}/incr/n`, { method: 'POST' });
      slowest = Math.max(slowest, Date.now() - t0);
      if (res.status === 200) {
        ok++;
        served.add(res.headers.get('x-shoal-upstream') ?? '');
      } else {
        failed++;
        expect(res.status).toBe(504); // timed out on the frozen node, never a wrong answer
      }
      if (i >= 90) await new Promise((r) => setTimeout(r, 20)); // give the thawed node time to be ready again
    }
    // Only requests sent to the frozen node before the health check noticed may fail.
    expect(failed).toBeLessThanOrEqual(2);
    expect(slowest).toBeLessThan(2500);
    const body = (await (await browser.fetch(`${url}/session`)).json()) as { attributes: { n?: number } };
    // A request that timed out may still be applied once the node thaws: never fewer than acknowledged.
    expect(body.attributes.n).toBeGreaterThanOrEqual(ok);
    expect(body.attributes.n).toBeLessThanOrEqual(ok + failed);
    expect(served.has(victim.name)).toBe(true); // it served before the freeze and after the thaw
    const after = await Promise.all(
      Array.from({ length: 6 }, () => browser.fetch(`${url}/session`).then((r) => r.headers.get('x-shoal-upstream'))),
    );
    expect(after).toContain(victim.name);
  });
});
