/**
 * examples/polyglot/app.py (Python standard library only) as the app behind two `shoal gateway`
 * processes on Redis, all on one origin behind nginx (deploy/nginx/shoal.conf: the Python app as
 * the web upstream, /ws and /sse to the gateways). A Chromium page signs in on the Python app's
 * own form; the gateways learn who it is from the app's connect proxy (the forwarded cookie); a
 * second client connects with the app's HS256 JWT instead. The app publishes through the server
 * API (POST /publish with the bearer key) and answers the page's RPC through its RPC proxy. Mid-sequence the gateway holding the page is SIGKILLed:
 * the page resumes on the other with every message exactly once, in order.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type NginxProcess, nginxVersion, renderNginx, startNginx } from '../deploy/nginx-runner.js';
import { killAllShoal, type ShoalNode, startShoal } from '../deploy/shoal-node.js';
import { buildSdkBundle, chromiumSkipReason, launchChromium } from '../helpers/chromium.js';
import { ENGINE_URLS, engineSkipReason, skipBecause } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { captureOutput, freePort, ROOT } from '../helpers/processes.js';

const MESSAGES = 200;
const KILL_AFTER = 80;
const NODE_START_MS = 90_000;
const PUBLISH_KEY = 'polyglot-publish-key';
const TOKEN_SECRET = 'polyglot-token-secret-0123456789-abcdefghij';
const AUDIENCE = 'polyglot';
const CHANNEL = 'room:lobby';

const hasPython = spawnSync('python3', ['--version']).status === 0;
const skip =
  chromiumSkipReason() ??
  (nginxVersion() ? undefined : skipBecause('nginx is not installed (apt-get install nginx)')) ??
  (hasPython ? undefined : skipBecause('python3 is not installed (apt-get install python3)')) ??
  (await engineSkipReason('redis'));

const runId = randomUUID().slice(0, 8);

let browser: Browser | undefined;
let context: BrowserContext | undefined;
let nginx: NginxProcess | undefined;
let py: ChildProcess | undefined;
let pyOut: () => string = () => '';
let dir = '';
const gateways = new Map<string, ShoalNode>();
let base = '';

async function startPython(port: number, gatewayPorts: number[], sdk: string): Promise<void> {
  py = spawn('python3', [join(ROOT, 'examples/polyglot/app.py'), String(port)], {
    env: {
      ...process.env,
      SHOAL_GATEWAY_URLS: gatewayPorts.map((p) => `http://127.0.0.1:${p}`).join(','),
      SHOAL_PUBLISH_KEY: PUBLISH_KEY,
      SHOAL_TOKEN_SECRET: TOKEN_SECRET,
      SHOAL_TOKEN_AUDIENCE: AUDIENCE,
      POLYGLOT_CHANNEL: CHANNEL,
      POLYGLOT_SDK: sdk,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  pyOut = captureOutput(py);
  await eventually(async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok === true, {
    timeoutMs: 10_000,
    intervalMs: 50,
    message: () => `app.py did not start:\n${pyOut()}`,
  });
}

beforeAll(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'shoal-polyglot-'));
  const sdk = join(dir, 'shoal-client.js');
  const [nginxPort, pyPort, gw1, gw2] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const gatewayPorts = [gw1, gw2];
  base = `http://127.0.0.1:${nginxPort}`;
  await buildSdkBundle(sdk);
  await startPython(pyPort, gatewayPorts, sdk);
  const env = {
    SHOAL_STORE: ENGINE_URLS.redis,
    SHOAL_BUS: ENGINE_URLS.redis,
    // Sessions are the Python app's: the namespace only keeps this run's bus channels apart.
    SHOAL_NAMESPACE: `polyglot-${runId}`,
    SHOAL_SECRETS: 'polyglot-test-secret-0123456789-abcdefghijklmnop',
    SHOAL_COOKIE_SECURE: 'false',
    SHOAL_ORIGINS: base,
    SHOAL_PUBLISH_KEY: PUBLISH_KEY,
    SHOAL_CONNECT_PROXY_URL: `http://127.0.0.1:${pyPort}/shoal/connect`,
    SHOAL_TOKEN_SECRET: TOKEN_SECRET,
    SHOAL_TOKEN_AUDIENCE: AUDIENCE,
    SHOAL_RPC_PROXY_URL: `http://127.0.0.1:${pyPort}/shoal/rpc`,
  };
  const started = await Promise.all(
    gatewayPorts.map((port, i) =>
      startShoal({
        command: 'gateway',
        app: 'examples/polyglot/gateway.app.mjs',
        name: `polyglot-${runId}-gw${i + 1}`,
        port,
        env,
        timeoutMs: NODE_START_MS,
      }),
    ),
  );
  for (const node of started) gateways.set(node.name, node);
  nginx = await startNginx(
    dir,
    renderNginx({ dir, port: nginxPort, web: [pyPort], gateways: gatewayPorts }),
    nginxPort,
  );
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await context?.close().catch(() => {});
  await browser?.close().catch(() => {});
  await nginx?.stop();
  await killAllShoal();
  py?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** What the page keeps on `globalThis.t`. */
interface PageState {
  /** The page's own list: the data of each message (`{n, from}`). */
  got: unknown[];
  tokenGot: number[];
  hellos: string[];
  states: string[];
}

/**
 * Follows the client the app's page opened on /ws with its cookie (what it got is in
 * `polyglot.got`), and opens a second client with the app's JWT, recording what they get.
 */
const OPEN = `(async (channel) => {
  const c = globalThis.polyglot.client;
  const t = (globalThis.t = { got: globalThis.polyglot.got, tokenGot: [], hellos: [], states: [], client: c });
  if (c.hello) t.hellos.push(c.hello.gateway);
  c.on('hello', (h) => t.hellos.push(h.gateway));
  c.on('state', (s) => t.states.push(s));
  const { token } = await (await fetch('/token', { method: 'POST' })).json();
  const viaToken = shoal.connect('/ws', { transport: 'websocket', token });
  t.tokenClient = viaToken;
  viaToken.subscribe(channel, (m) => t.tokenGot.push(m.data.n));
  for (let i = 0; i < 500 && (c.cursor(channel) === undefined || viaToken.cursor(channel) === undefined); i++)
    await new Promise((r) => setTimeout(r, 20));
  return { joined: c.cursor(channel) !== undefined, tokenJoined: viaToken.cursor(channel) !== undefined,
    user: c.hello?.user ?? null, tokenUser: viaToken.hello?.user ?? null, gateway: c.hello?.gateway ?? null };
})`;

const state = (page: Page) =>
  page.evaluate(() => {
    const { got, tokenGot, hellos, states } = (globalThis as unknown as { t: PageState }).t;
    return { got: (got as unknown as Array<{ n: number }>).map((d) => d.n), tokenGot, hellos, states };
  });

describe.skipIf(skip !== undefined)('a Python app behind two gateways on redis, in Chromium', () => {
  it('signs in on the app, connects through its connect proxy and its JWT, gets what it publishes, and resumes across a SIGKILL', async () => {
    if (!browser) throw new Error('no browser');
    context = await browser.newContext();
    const page = await context.newPage();
    expect((await page.goto(`${base}/`))?.status()).toBe(200);
    await page.fill('input[name=user]', 'ada');
    await page.click('button');
    // The form posts, the app redirects to / and the page's script connects. `#user` exists while the
    // SDK script above that code still loads, and the URL is / before the post too: wait for the client.
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { polyglot?: { signedIn: boolean; client?: unknown } }).polyglot?.client !==
        undefined,
      null,
      { timeout: 10_000 },
    );
    expect(await page.textContent('#user')).toBe('ada');

    const opened = (await page.evaluate(`${OPEN}(${JSON.stringify(CHANNEL)})`)) as {
      joined: boolean;
      tokenJoined: boolean;
      user: string | null;
      tokenUser: string | null;
      gateway: string | null;
    };
    // Both know the user from the Python app: one by its connect proxy, one by its JWT.
    expect(opened).toMatchObject({ joined: true, tokenJoined: true, user: 'ada', tokenUser: 'ada' });
    const held = opened.gateway ?? '';
    expect(gateways.has(held), `hello named ${held}`).toBe(true);

    // The app's publish route, called with the session cookie the page got (a server-side form post would do the same).
    const cookie = (await context.cookies(base)).map((c) => `${c.name}=${c.value}`).join('; ');
    const publish = async (n: number) => {
      const res = await fetch(`${base}/api/publish`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json' },
        body: JSON.stringify({ event: 'seq', data: { n } }),
        signal: AbortSignal.timeout(10_000),
      });
      expect(res.status, `publish #${n}: ${await res.clone().text()}`).toBe(202);
    };

    await publish(1);
    await page.waitForFunction(() => (globalThis as unknown as { t: PageState }).t.tokenGot.length >= 1, null, {
      timeout: 10_000,
    });

    // RPC through the app's RPC proxy: its result, who the app saw calling, and its error with the app's code.
    const rpc = await page.evaluate(async () => {
      const c = (globalThis as unknown as { t: { client: { rpc(m: string, d: unknown): Promise<unknown> } } }).t.client;
      const failed = await c.rpc('nope', null).then(
        () => null,
        (err: { code?: string; message?: string }) => ({ code: err.code, message: err.message }),
      );
      return { sum: await c.rpc('add', [2, 3, 4]), who: await c.rpc('whoami', null), failed };
    });
    expect(rpc.sum).toBe(9);
    expect(rpc.who).toEqual({ user: 'ada' });
    expect(rpc.failed).toEqual({ code: 'not_found', message: expect.stringMatching(/no method 'nope'/) });

    for (let n = 2; n <= MESSAGES; n++) {
      await publish(n);
      if (n === KILL_AFTER) {
        const node = gateways.get(held);
        node?.signal('SIGKILL');
        await node?.exited();
      }
      await sleep(5);
    }
    await page
      .waitForFunction((total) => (globalThis as unknown as { t: PageState }).t.got.length >= total, MESSAGES, {
        timeout: 20_000,
      })
      .catch(() => {});
    const s = await state(page);
    const context_ = `states ${JSON.stringify(s.states)}, hellos ${JSON.stringify(s.hellos)}\n${pyOut().slice(-1000)}`;
    // Every message once, in order, across the kill.
    expect(s.got, context_).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1));
    expect(s.hellos.at(-1), context_).not.toBe(held);
    expect(s.tokenGot[0]).toBe(1);
  }, 180_000);

  it('a handshake without the app cookie, or with a forged one, is refused by the connect proxy with 4401', async () => {
    const wsUrl = `${base.replace('http', 'ws')}/ws`;
    for (const cookie of [undefined, 'polyglot_session=forged']) {
      const ws = new WebSocket(wsUrl, { headers: { origin: base, ...(cookie ? { cookie } : {}) } });
      const closed = await new Promise<{ code: number; reason: string }>((resolve, reject) => {
        ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
        ws.once('error', reject);
        setTimeout(() => reject(new Error('no close within 10 s')), 10_000);
      });
      expect(closed, `cookie ${cookie}`).toEqual({ code: 4401, reason: 'sign in first' });
    }
  });
});
