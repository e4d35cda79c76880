/**
 * SSE as a real browser uses it, through what routes it in front of the gateways:
 * - behind `shoal start`'s dev balancer, a page on the app's origin makes rpc, publish and history
 *   requests over SSE (they go as POSTs to the stream's path, which the balancer sends to gateways);
 * - a page on another origin connects to a gateway with a signed token over SSE and makes the same
 *   requests: the gateway answers the browser's CORS checks for an origin it allows, and for no other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSdkBundle, chromiumSkipReason, launchChromium } from '../helpers/chromium.js';
import { type DevCluster, startDevCluster } from '../helpers/dev-cluster.js';
import { freePortRun } from '../helpers/processes.js';

const skip = chromiumSkipReason();
const TOKEN_SECRET = 'sse-browser-test-token-secret-0123456789';

let browser: Browser;
let cluster: DevCluster;
let dir = '';
let gatewayUrl = '';

beforeAll(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'shoal-sse-'));
  const sdk = join(dir, 'sdk.js');
  await buildSdkBundle(sdk);
  const port = await freePortRun(4); // the balancer, 2 web nodes, 1 gateway
  gatewayUrl = `http://127.0.0.1:${port + 3}`;
  cluster = await startDevCluster({
    app: 'test/browser/fixtures/sse-app.ts',
    web: 2,
    gateways: 1,
    port,
    env: {
      SHOAL_STORE: `sqlite:${join(dir, 'shoal.db')}`,
      SHOAL_TOKEN_SECRET: TOKEN_SECRET,
      // An origin of the user's own: shoal start adds it to the balancer's, never in its place.
      SHOAL_ORIGINS: 'http://127.0.0.1:9',
      SSE_TEST_SDK: sdk,
    },
  });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  transport: string;
  states: string[];
  sum: unknown;
  published: unknown;
  history: string[];
  received: string[];
  error?: string;
}

/** In the page: connect over SSE only, then make one request of each kind. */
function requestsOverSse(page: Page, url: string, token: boolean): Promise<Outcome> {
  return page.evaluate(
    async ({ url, token }) => {
      const sdk = (globalThis as unknown as { shoal: typeof import('shoal/client') }).shoal;
      const states: string[] = [];
      const received: string[] = [];
      const getToken = async () => {
        const res = await fetch('/token?user=bea');
        return ((await res.json()) as { token: string }).token;
      };
      const rt = sdk.connect(url, { transport: 'sse', ...(token ? { getToken } : {}) });
      rt.on('state', (state, detail) => states.push(`${state}:${detail.code ?? ''}`));
      rt.subscribe('room:1', (m) => received.push(m.event));
      const outcome: Outcome = { transport: '', states, sum: null, published: null, history: [], received };
      try {
        const deadline = Date.now() + 10_000;
        while (rt.cursor('room:1') === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        outcome.transport = rt.transport;
        outcome.sum = await rt.rpc('add', { a: 2, b: 3 });
        outcome.published = await rt.publish('room:1', 'chat', { text: 'hi' });
        const h = await rt.history('room:1', { limit: 10 });
        outcome.history = h.messages.map((m) => m.event);
        while (!received.includes('chat') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      } catch (err) {
        outcome.error = String(err);
      } finally {
        rt.close();
      }
      return outcome;
    },
    { url, token },
  );
}

describe.skipIf(skip)('SSE in Chromium', () => {
  it('behind the dev balancer: rpc, publish and history reach a gateway', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${cluster.url}/`);
    const login = await page.evaluate(async () => (await fetch('/login?user=ann', { method: 'POST' })).status);
    expect(login).toBe(200);
    const outcome = await requestsOverSse(page, '/ws', false);
    await context.close();
    expect(outcome.error).toBeUndefined();
    expect(outcome.transport).toBe('sse');
    expect(outcome.sum).toEqual({ sum: 5, user: 'ann' });
    expect(outcome.published).toMatchObject({ offset: 1 });
    expect(outcome.history).toEqual(['chat']);
    expect(outcome.received).toEqual(['chat']);
  }, 60_000);

  it('from another origin the gateway allows: a token, the stream and its requests pass CORS', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // The page is the balancer's origin (allowed by shoal start); the gateway is another port.
    await page.goto(`${cluster.url}/`);
    const outcome = await requestsOverSse(page, `${gatewayUrl}/`, true);
    await context.close();
    expect(outcome.error).toBeUndefined();
    expect(outcome.transport).toBe('sse');
    expect(outcome.sum).toEqual({ sum: 5, user: 'bea' });
    expect(outcome.published).toMatchObject({ offset: 2 });
    expect(outcome.history).toEqual(['chat', 'chat']);
    expect(outcome.received).toEqual(['chat']);
  }, 60_000);

  it('an origin the gateway does not allow gets no CORS answer', async () => {
    const preflight = await fetch(`${gatewayUrl}/sse`, {
      method: 'OPTIONS',
      headers: {
        origin: 'http://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    const allowed = await fetch(`${gatewayUrl}/sse`, {
      method: 'OPTIONS',
      headers: { origin: cluster.url, 'access-control-request-method': 'POST' },
    });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(cluster.url);
    expect(allowed.headers.get('access-control-allow-credentials')).toBe('true');
  });
});
