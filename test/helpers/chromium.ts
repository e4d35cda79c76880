/**
 * Debian's Chromium for browser tests, driven by playwright-core: where it is, how it is
 * launched (headless, a fresh temporary profile each time), and the skip rule when it is absent.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';
import { skipBecause } from './engines.js';
import { ROOT } from './processes.js';

export const CHROMIUM = process.env.SHOAL_CHROMIUM ?? '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // QUIC would try UDP to loopback servers that only speak TCP.
  '--disable-quic',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}

/** Why Chromium tests cannot run here, or undefined; with SHOAL_REQUIRE_ENGINES=1 a missing Chromium throws. */
export function chromiumSkipReason(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  return skipBecause(`Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium, or set SHOAL_CHROMIUM)`);
}

/** The browser SDK (`shoal/client`) as one classic script that defines the global `shoal`, written to `file`. */
export async function buildSdkBundle(file: string): Promise<void> {
  const out = await build({
    stdin: { contents: "export * from 'shoal/client';", resolveDir: ROOT, loader: 'js' },
    bundle: true,
    format: 'iife',
    globalName: 'shoal',
    platform: 'browser',
    target: 'es2022',
    write: false,
  });
  writeFileSync(file, out.outputFiles[0]?.text ?? '');
}

/**
 * Watches `page` from now on and returns what went wrong on it: requests that failed or were answered
 * 4xx/5xx, console errors (how Chromium reports a failed load the page did not ask for itself, such as
 * its icon), uncaught exceptions. A page that works says nothing.
 */
export function pageProblems(page: Page): () => string[] {
  const problems: string[] = [];
  page.on('requestfailed', (r) =>
    problems.push(`request failed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`),
  );
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`answered ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
  return () => [...problems];
}
