/**
 * The demo app in a real browser (Debian's Chromium driven by playwright-core)
 * against a real local cluster: `shoal start` with 3 web nodes and 2 gateways
 * behind the dev balancer, on a temporary SQLite store and bus.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSkipReason, launchChromium, pageProblems } from '../helpers/chromium.js';
import { type DevCluster, startDevCluster } from '../helpers/dev-cluster.js';
import { freePortRun, ROOT } from '../helpers/processes.js';

const RESULTS = join(ROOT, 'test-results');
const DASHBOARD_TOKEN = 'browser-test-dashboard-token';

const skip = chromiumSkipReason();

describe.skipIf(skip)('demo app in Chromium on a local cluster', () => {
  let cluster: DevCluster | undefined;
  let base = '';
  let dir = '';
  let browser: Browser;
  let alice: BrowserContext;
  let bob: BrowserContext;
  let ops: BrowserContext;
  let a1: Page;
  let a2: Page;
  let b1: Page;
  let dash: Page;

  /** Runs a scenario; on failure saves a screenshot of every open page under test-results/. */
  async function scenario(name: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      mkdirSync(RESULTS, { recursive: true });
      const pages = [alice, bob, ops].filter(Boolean).flatMap((c) => c.pages());
      await Promise.all(
        pages.map((p, i) =>
          p.screenshot({ path: join(RESULTS, `demo-${name}-${i}.png`), fullPage: true }).catch(() => {}),
        ),
      );
      throw new Error(
        `${(err as Error).message}\n--- cluster output (tail) ---\n${cluster?.output().slice(-3000) ?? ''}`,
        {
          cause: err,
        },
      );
    }
  }

  async function signIn(page: Page, name: string): Promise<void> {
    await page.goto(`${base}/`);
    await page.getByLabel('Your name').fill(name);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByTestId('user').textContent()).toBe(name);
    await realtimeOpen(page);
  }

  async function realtimeOpen(page: Page): Promise<string> {
    await page.locator('#gateway[data-state="open"][data-gateway]').waitFor({ timeout: 15_000 });
    return (await page.getByTestId('gateway').getAttribute('data-gateway')) ?? '';
  }

  const cartOf = (page: Page) =>
    page.evaluate(async () => {
      const r = await fetch('/me', { headers: { accept: 'application/json' } });
      return ((await r.json()) as { cart: { items: Record<string, number> } }).cart.items;
    });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-demo-'));
    const port = await freePortRun(6);
    base = `http://127.0.0.1:${port}`;
    const db = `sqlite:${join(dir, 'demo.db')}`;
    const [launched, started] = await Promise.all([
      launchChromium(), // a fresh temporary profile each run
      startDevCluster({
        app: 'examples/demo/shoal.app.ts',
        web: 3,
        gateways: 2,
        port,
        env: {
          SHOAL_STORE: db,
          SHOAL_BUS: db,
          SHOAL_SECRETS: 'browser-test-secret-0123456789-abcdefghijklmnop',
          SHOAL_DEMO_SHIP_DELAY: '300ms',
          // The dashboard then asks for its token: the test types it into the page.
          SHOAL_DASHBOARD_TOKEN: DASHBOARD_TOKEN,
        },
      }),
    ]);
    cluster = started;
    browser = launched;
    const viewport = { width: 1280, height: 900 };
    alice = await browser.newContext({ viewport });
    bob = await browser.newContext({ viewport });
    ops = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  }, 60_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('two users sign in; each page names its web node and the gateway holding its socket', async () => {
    await scenario('sign-in', async () => {
      a1 = await alice.newPage();
      b1 = await bob.newPage();
      await Promise.all([signIn(a1, 'alice'), signIn(b1, 'bob')]);
      a2 = await alice.newPage();
      const res = await a2.goto(`${base}/`);
      expect(res?.headers()['x-shoal-node']).toMatch(/^web-[123]$/);
      await expect.poll(() => a2.getByTestId('user').textContent()).toBe('alice');
      await realtimeOpen(a2);
      for (const page of [a1, a2, b1]) {
        expect(await page.getByTestId('page-node').textContent()).toMatch(/^web-[123]$/);
        expect(await page.getByTestId('gateway').getAttribute('data-gateway')).toMatch(/^gateway-[12]$/);
      }
    });
  });

  it('two tabs of one session add to the cart at once: all 20 adds are kept', async () => {
    await scenario('cart', async () => {
      // Ten clicks per tab, interleaved, without waiting for the responses: concurrent updates on 3 nodes.
      // (A click event rather than locator.click(): a background tab throttles the animation frames
      // Playwright's actionability checks wait for, which would serialise the clicks.)
      const clicks = async (page: Page) => {
        for (let i = 0; i < 10; i++) await page.getByTestId('add-beans').dispatchEvent('click');
      };
      await Promise.all([clicks(a1), clicks(a2)]);
      await expect.poll(() => cartOf(a1), { timeout: 10_000 }).toEqual({ beans: 20 });
      // Both tabs converge on the newest cart: their own responses and the other tab's pushes.
      for (const page of [a1, a2]) {
        await expect.poll(() => page.getByTestId('cart-count').textContent(), { timeout: 10_000 }).toBe('20');
      }
      expect(await a1.locator('#status').textContent()).toBe('');
      // Bob's cart is his own.
      expect(await cartOf(b1)).toEqual({});
    });
  });

  it('chat: both users see each other’s messages, presence shows both; checkout notifies', async () => {
    await scenario('chat', async () => {
      await a1.bringToFront(); // a background tab runs its animation frames slowly: clicks wait on them
      for (const page of [a1, b1]) {
        await expect.poll(() => page.getByTestId('presence').textContent(), { timeout: 10_000 }).toBe('alice, bob');
      }
      await a1.getByRole('textbox', { name: 'Message' }).fill('hi bob');
      await a1.getByRole('textbox', { name: 'Message' }).press('Enter');
      await b1.getByRole('textbox', { name: 'Message' }).fill('hi alice');
      await b1.getByRole('button', { name: 'Send' }).click();
      for (const page of [a1, b1, a2]) {
        await expect.poll(() => page.getByTestId('messages').textContent()).toContain('hi bob');
        await expect.poll(() => page.getByTestId('messages').textContent()).toContain('hi alice');
      }
      // Checkout in one tab: the "shipped" push comes later from a web node, to every tab of the user.
      await a1.getByTestId('checkout').click();
      for (const page of [a1, a2]) {
        await expect.poll(() => page.getByTestId('notifications').textContent()).toMatch(/Order \w+ shipped/);
        await expect.poll(() => page.getByTestId('cart-count').count()).toBe(0);
      }
    });
  });

  it('a web node and a gateway are killed from the dashboard; cart and chat keep working', async () => {
    await scenario('kill', async () => {
      dash = await ops.newPage();
      const problems = pageProblems(dash);
      await dash.goto(`${base}/_shoal/`);
      await dash.getByLabel('Dashboard token (SHOAL_DASHBOARD_TOKEN)').fill(DASHBOARD_TOKEN);
      await dash.getByRole('button', { name: 'Open' }).click();
      await expect.poll(() => dash.locator('#nodes tbody tr').count(), { timeout: 10_000 }).toBe(5);
      await expect.poll(() => dash.getByTestId('state-gateway-2').textContent()).toBe('ready');
      // Loaded, token and all, without a failed request or an error in the console.
      expect(problems()).toEqual([]);

      const held = (await a1.getByTestId('gateway').getAttribute('data-gateway')) as string;
      const other = held === 'gateway-1' ? 'gateway-2' : 'gateway-1';
      await dash.getByRole('button', { name: `Send SIGKILL to ${held}` }).click();
      await expect.poll(() => dash.locator('#status').textContent()).toBe(`SIGKILL sent to ${held}.`);
      await dash.getByRole('button', { name: 'Send SIGKILL to web-2' }).click();
      await expect.poll(() => dash.locator('#status').textContent()).toBe('SIGKILL sent to web-2.');

      await a1.bringToFront();
      // The tab lost its socket and resumed on the surviving gateway.
      await expect.poll(() => a1.getByTestId('gateway').getAttribute('data-gateway'), { timeout: 15_000 }).toBe(other);
      await realtimeOpen(a1);

      // Cart edits still succeed: the balancer sends each request to a live node.
      for (let i = 0; i < 3; i++) await a1.getByTestId('add-grinder').click();
      await expect.poll(() => cartOf(a1), { timeout: 10_000 }).toMatchObject({ grinder: 3 });
      expect(await a1.locator('#status').textContent()).toBe('');

      // Chat arrives after the resume, both ways.
      await b1.getByRole('textbox', { name: 'Message' }).fill('still there?');
      await b1.getByRole('textbox', { name: 'Message' }).press('Enter');
      await expect.poll(() => a1.getByTestId('messages').textContent(), { timeout: 10_000 }).toContain('still there?');
      await a1.getByRole('textbox', { name: 'Message' }).fill('yes, on another gateway');
      await a1.getByRole('textbox', { name: 'Message' }).press('Enter');
      await expect
        .poll(() => b1.getByTestId('messages').textContent(), { timeout: 10_000 })
        .toContain('yes, on another gateway');

      // The supervisor restarts both; the dashboard shows it.
      for (const name of [held, 'web-2']) {
        await expect
          .poll(() => dash.locator(`tr[data-node="${name}"] td`).nth(3).textContent(), { timeout: 15_000 })
          .toBe('1');
      }
      await expect.poll(() => dash.locator('#chart-requests svg path').count()).toBeGreaterThan(0);
    });
  });

  it('"log out everywhere" in one tab closes the other tab’s socket and the page says signed out', async () => {
    await scenario('logout', async () => {
      await a1.bringToFront();
      await realtimeOpen(a2);
      await a1.getByTestId('logout-everywhere').click();
      await a1.waitForURL(`${base}/`);
      await expect.poll(() => a1.getByLabel('Your name').count()).toBe(1);
      // 4001 from the gateway: the client stops reconnecting and the page says so.
      await expect.poll(() => a2.getByTestId('gateway').getAttribute('data-state'), { timeout: 10_000 }).toBe('ended');
      expect(await a2.getByTestId('signed-out').isVisible()).toBe(true);
      expect(await a2.getByTestId('add-beans').isDisabled()).toBe(true);
      // A request from the ended session is refused: it is over on every node.
      expect(await a2.evaluate(async () => (await fetch('/cart/add', { method: 'POST' })).status)).toBe(401);
      // Bob is not affected.
      expect(await b1.getByTestId('gateway').getAttribute('data-state')).toBe('open');
    });
  });
});
