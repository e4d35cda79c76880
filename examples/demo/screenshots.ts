/**
 * `npx tsx examples/demo/screenshots.ts`: refreshes docs/images/demo.png and
 * docs/images/dashboard.png. Runs the demo as a local cluster on a temporary
 * store, drives it from Chromium for about 45 s (two users chatting, bursts of
 * concurrent cart edits, a gateway killed and a web node drained from the
 * dashboard), then photographs the demo page and the dashboard.
 */

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT = join(ROOT, 'docs/images');
const PORT = Number(process.env.PORT ?? 18480);
const base = `http://127.0.0.1:${PORT}`;
const dir = mkdtempSync(join(tmpdir(), 'shoal-shots-'));
const db = `sqlite:${join(dir, 'demo.db')}`;

const cluster = spawn(
  process.execPath,
  [
    ...['--import', 'tsx', 'src/cli/main.ts', 'start', '--app', 'examples/demo/shoal.app.ts'],
    ...['--web', '3', '--gateways', '2', '--port', String(PORT)],
  ],
  {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, SHOAL_STORE: db, SHOAL_BUS: db, SHOAL_DEMO_SHIP_DELAY: '2s', SHOAL_DASHBOARD_TOKEN: '' },
  },
);
let output = '';
cluster.stdout?.on('data', (d) => {
  output += d;
});

try {
  for (let i = 0; !output.includes(`open ${base}`); i++) {
    if (i > 600 || cluster.exitCode !== null) throw new Error(`the cluster did not start:\n${output}`);
    await sleep(100);
  }
  const browser = await chromium.launch({
    executablePath: process.env.SHOAL_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-quic'],
  });
  const viewport = { width: 1280, height: 860 };
  const [alice, bob, ops] = await Promise.all([1, 2, 3].map(() => browser.newContext({ viewport })));
  const a = await (alice as NonNullable<typeof alice>).newPage();
  const b = await (bob as NonNullable<typeof bob>).newPage();
  const dash = await (ops as NonNullable<typeof ops>).newPage();
  await dash.setViewportSize({ width: 1280, height: 1000 });
  await dash.goto(`${base}/_shoal/`);

  const signIn = async (page: Page, name: string) => {
    await page.goto(`${base}/`);
    await page.getByLabel('Your name').fill(name);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#gateway[data-state="open"]').waitFor();
  };
  await signIn(a, 'alice');
  await signIn(b, 'bob');
  const say = async (page: Page, text: string) => {
    const box = page.getByRole('textbox', { name: 'Message' });
    await box.fill(text);
    await box.press('Enter');
  };
  // Seven cart edits at once from one session: the compare-and-swap retries show up as conflicts.
  // (No named functions inside evaluate(): tsx wraps them in a helper the page does not have.)
  const burst = (page: Page) =>
    page.evaluate(async () => {
      const edits = [
        'add/beans',
        'add/mug',
        'add/beans',
        'remove/beans',
        'remove/mug',
        'add/filters',
        'remove/filters',
      ];
      await Promise.all(
        edits.map((edit) =>
          fetch(`/cart/${edit.split('/')[0]}`, {
            method: 'POST',
            headers: { accept: 'application/json', 'content-type': 'application/json' },
            body: JSON.stringify({ sku: edit.split('/')[1] }),
          }),
        ),
      );
    });
  const signal = (name: string, sig: string) =>
    dash.evaluate(
      ([n, s]) =>
        fetch(`/_shoal/api/nodes/${n}/signal`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ signal: s }),
        }),
      [name, sig] as const,
    );

  const lines = ['morning!', 'is the grinder any good?', 'mine arrived yesterday', 'ordering one now'];
  const started = Date.now();
  for (let tick = 0; Date.now() - started < 50_000; tick++) {
    await burst(a);
    if (tick % 4 === 0) await say(tick % 8 ? a : b, lines[(tick / 4) % lines.length] ?? 'hi');
    if (tick === 40) await signal('gateway-2', 'SIGKILL');
    if (tick === 80) await signal('web-2', 'SIGTERM');
    if (tick % 40 === 20) await a.getByTestId('checkout').click();
    await sleep(250);
  }
  // While the traffic still shows on the charts.
  mkdirSync(OUT, { recursive: true });
  await dash.screenshot({ path: join(OUT, 'dashboard.png'), fullPage: true });
  await a.getByTestId('add-grinder').click();
  await sleep(500);
  await a.screenshot({ path: join(OUT, 'demo.png') });
  await browser.close();
  console.log(`wrote ${join(OUT, 'demo.png')} and ${join(OUT, 'dashboard.png')}`);
} finally {
  if (cluster.pid) process.kill(-cluster.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
