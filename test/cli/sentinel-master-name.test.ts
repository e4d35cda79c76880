import { spawn } from 'node:child_process';
import { createBus, createStore } from 'shoal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binariesSkipReason } from '../failover/fixtures/engine-process.js';
import { MASTER_NAME, type SentinelFixture, startSentinel } from '../failover/fixtures/redis-sentinel.js';
import { runCli } from '../helpers/cli.js';
import { BUILT_ENV, CLI, captureOutput, freePort, ROOT } from '../helpers/processes.js';

/**
 * A URL whose master name the sentinels do not monitor (a typo): the sentinels are up and answer "No
 * such master with that name", so every message says the name is wrong, which one was asked for and
 * which they know, never that Redis is down or needs more time.
 */
const skip = binariesSkipReason(['redis-server', '--version'], ['redis-sentinel', '--version']);
let sentinel: SentinelFixture;
let wrongUrl = '';

beforeAll(async () => {
  if (skip) return;
  sentinel = await startSentinel({ replicas: 1, sentinels: 2 });
  wrongUrl = sentinel.url.replace(`/${MASTER_NAME}`, '/mymastr');
}, 60_000);
afterAll(() => sentinel?.stop());

const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';

function expectNamesTheMaster(message: string): void {
  expect(message).toMatch(/know no master named "mymastr" \(they know "mymaster"\)/);
  expect(message).toMatch(/master name is wrong/);
  expect(message).not.toMatch(/Check that Redis is running|\?timeout=|All sentinels are unreachable/);
}

// The three mostly wait out timeouts against the same sentinels, and change nothing there: side by side.
describe.skipIf(skip !== undefined)('a wrong Sentinel master name', { concurrent: true }, () => {
  it('store and bus calls say the name is wrong and which names the sentinels know', async () => {
    const store = await createStore(wrongUrl, { timeoutMs: 1500 });
    const bus = await createBus(wrongUrl, { timeoutMs: 1500 });
    try {
      // Each waits out its timeout: side by side.
      const [storeErr, busErr] = await Promise.all(
        [store.ping(), bus.ping()].map((p) =>
          p.then(
            () => null,
            (e: Error) => e,
          ),
        ),
      );
      expectNamesTheMaster(storeErr?.message ?? 'no error');
      expectNamesTheMaster(busErr?.message ?? 'no error');
    } finally {
      await store.close();
      await bus.close();
    }
  });

  it('shoal doctor fails the store and the bus with the name to write, not "start it"', async () => {
    const r = await runCli(['doctor'], { env: { SHOAL_STORE: wrongUrl, SHOAL_SECRETS: SECRET } });
    expect(r.code).toBe(1);
    const store = r.stdout.split('\n').find((l) => l.startsWith('FAIL  session store')) ?? r.stdout;
    expectNamesTheMaster(store);
    expect(r.stdout).toMatch(/fix: write the master name the sentinels monitor after the hosts in SHOAL_STORE/);
    expect(r.stdout).not.toMatch(/start it/);
  });

  it("a running web node's /readyz says the same", async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [CLI, 'web', '--app', 'examples/probe/shoal.app.ts', '--port', String(port)],
      {
        cwd: ROOT,
        env: { ...process.env, ...BUILT_ENV, SHOAL_STORE: wrongUrl, SHOAL_SECRETS: SECRET },
        stdio: 'pipe',
      },
    );
    const out = captureOutput(child);
    try {
      let problem = '';
      const until = Date.now() + 20_000;
      while (Date.now() < until && !/they know/.test(problem)) {
        await new Promise((r) => setTimeout(r, 300));
        const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
        if (res) problem = String(((await res.json()) as { problem?: string }).problem ?? '');
      }
      expect(problem, out()).not.toBe('');
      expectNamesTheMaster(problem);
    } finally {
      child.kill('SIGKILL');
    }
  }, 40_000);
});
