import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { runCli } from '../helpers/cli.js';
import { type DevCluster, startDevCluster } from '../helpers/dev-cluster.js';
import { freePortRun } from '../helpers/processes.js';

/**
 * `shoal start` for an app whose pages another server answers (a backend in another language): an app
 * module without web(), or --web 0, runs gateways alone behind the dev balancer.
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-start-gateways-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';
const PUBLISH_KEY = 'a-publish-key-of-the-backend-0123456789';
const GATEWAY_APP = join(dir, 'gateway.app.mjs');
writeFileSync(GATEWAY_APP, 'export default { realtime: {} };\n');
const WEB_APP = join(dir, 'web.app.mjs');
writeFileSync(WEB_APP, "export default { web: () => (req, res) => res.end('from a web node') };\n");

let cluster: DevCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function start(app: string, counts: { web?: number; gateways?: number }, nodes: number): Promise<DevCluster> {
  const port = await freePortRun(1 + nodes);
  cluster = await startDevCluster({
    app,
    ...counts,
    port,
    cwd: dir,
    env: { SHOAL_STORE: `sqlite:${join(dir, `${port}.db`)}`, SHOAL_SECRETS: SECRET, SHOAL_PUBLISH_KEY: PUBLISH_KEY },
  });
  return cluster;
}

/** What the balancer answers to a WebSocket handshake: the gateway's close, or the status it refused with. */
function handshake(url: string): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace('http:', 'ws:')}/ws`, { origin: url });
    ws.once('unexpected-response', (_req, res) => {
      resolve(`refused ${res.statusCode}`);
      ws.terminate();
    });
    ws.once('close', (code) => resolve(`closed ${code}`));
    ws.once('error', () => {});
  });
}

describe('shoal start without web nodes', () => {
  it('an app module without web() runs as 2 gateways; the balancer serves their paths and says why for the rest', async () => {
    const c = await start(GATEWAY_APP, {}, 2);
    expect(c.stdout()).toMatch(/ready: 2 nodes behind/);
    expect(c.stdout()).toMatch(/no web nodes: the balancer serves the gateways alone/);
    expect(c.stdout()).toMatch(/gateway-2 +ready/);
    expect(c.stdout()).not.toMatch(/web-1/);

    // A page's request has no web node to go to: an answer that says so, at once.
    const page = await fetch(`${c.url}/`, { signal: AbortSignal.timeout(5000) });
    expect(page.status).toBe(503);
    expect(page.headers.get('retry-after')).toBeNull();
    expect(await page.text()).toMatch(
      /^this cluster runs no web node \(the app module has no web\(\), or --web 0 was given\): only the gateways' paths/,
    );

    // The gateways' own paths: the event stream (no session: a stream that says so), the server API, WebSocket.
    const sse = await fetch(`${c.url}/sse`, { headers: { origin: c.url }, signal: AbortSignal.timeout(5000) });
    expect(sse.status).toBe(200);
    expect(sse.headers.get('x-shoal-upstream')).toMatch(/^gateway-[12]$/);
    await sse.body?.cancel();
    const published = await fetch(`${c.url}/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'news', event: 'hello', data: { n: 1 } }),
    });
    expect(published.status).toBe(202);
    expect(published.headers.get('x-shoal-upstream')).toMatch(/^gateway-[12]$/);
    expect(await handshake(c.url)).toMatch(/^closed 4\d\d\d$/); // the gateway's "no session", not the balancer's 503

    // The dashboard lists the nodes there are.
    const state = (await (await fetch(`${c.url}/_shoal/api/state`)).json()) as { nodes: Array<{ name: string }> };
    expect(state.nodes.map((n) => n.name)).toEqual(['gateway-1', 'gateway-2']);
  }, 60_000);

  it('--web 0 runs an app that has web() as gateways alone, and names the web paths it cannot serve', async () => {
    const c = await start(WEB_APP, { web: 0, gateways: 1 }, 1);
    expect(c.stdout()).toMatch(/ready: 1 nodes behind/);
    const page = await fetch(`${c.url}/cart`, { method: 'POST', body: '{}' });
    expect(page.status).toBe(503);
    expect(await page.text()).toMatch(/no web node \(the app module has no web\(\), or --web 0 was given\)/);
    const sse = await fetch(`${c.url}/sse`, { headers: { origin: c.url } });
    expect(sse.headers.get('x-shoal-upstream')).toBe('gateway-1');
    await sse.body?.cancel();
  }, 60_000);

  it('refuses an app module without web() and --gateways 0, in one line, before any node starts', async () => {
    const port = await freePortRun(1);
    const r = await runCli(['start', '--app', GATEWAY_APP, '--gateways', '0', '--port', String(port)], {
      cwd: dir,
      env: { SHOAL_SECRETS: SECRET },
    });
    expect(r.stderr.trim()).toMatch(
      /^shoal: the app module .*gateway\.app\.mjs has no web\(ctx\), so shoal start runs gateways only, and --gateways 0 leaves none: give --gateways 1 or more/,
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  }, 60_000);

  it('an app module that does not load is reported in one line before any node starts', async () => {
    const broken = join(dir, 'broken.app.mjs');
    writeFileSync(broken, "console.log('printed as it loads');\nthrow new Error('no database here');\n");
    const r = await runCli(['start', '--app', broken, '--port', String(await freePortRun(4))], {
      cwd: dir,
      env: { SHOAL_SECRETS: SECRET },
    });
    expect(r.stderr.trim()).toMatch(/^shoal: could not load the app module .*broken\.app\.mjs: no database here$/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.code).toBe(78);
    expect(r.stdout).toBe('');
  }, 60_000);
});
