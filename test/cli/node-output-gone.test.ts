import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { BUILT_ENV, CLI, freePort } from '../helpers/processes.js';

/**
 * A node whose output nobody reads any more (the `shoal start` that read it was killed with
 * SIGKILL, a log shipper died) still drains and exits on SIGTERM. Its log lines then fail with
 * EPIPE; a logger that retries them forever blocks the process in the middle of its drain.
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-output-gone-'));
writeFileSync(join(dir, 'app.mjs'), 'export default { web: () => (req, res) => res.end("hi") };\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(['web', 'gateway'] as const)('shoal %s with no one reading its output', (role) => {
  it('drains and exits on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, role, '--app', 'app.mjs', '--port', String(port)], {
      cwd: dir,
      env: {
        ...process.env,
        ...BUILT_ENV,
        SHOAL_STORE: `sqlite:${join(dir, `${role}.db`)}`,
        SHOAL_SECRETS: 'output-gone-test-secret-0123456789abcdefghijk',
        SHOAL_ORIGINS: 'http://localhost',
        SHOAL_DRAIN_WINDOW: '100ms',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let output = '';
      child.stdout.on('data', (d: Buffer) => {
        output += d.toString();
      });
      await eventually(() => output.includes('listening'), { timeoutMs: 20_000, message: `${role} listening` });
      // The reader goes away: every line written from now on fails with EPIPE.
      child.stdout.destroy();
      child.stderr.destroy();
      child.kill('SIGTERM');
      const code = await Promise.race([
        exited,
        new Promise<string>((r) => setTimeout(() => r('still running'), 15_000)),
      ]);
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 40_000);
});
