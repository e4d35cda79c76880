import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { freePort, ROOT } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'shoal-listen-'));
const APP = join(ROOT, 'examples/probe/shoal.app.ts');
const env = {
  SHOAL_STORE: `sqlite:${join(dir, 'listen.db')}`,
  SHOAL_SECRETS: 'a-test-secret-of-at-least-32-characters-0123456789',
  SHOAL_ORIGINS: 'http://localhost:8080',
};

/** Another process's listener, holding the port the node is told to take. */
let holder: Server;
let taken: number;
beforeAll(async () => {
  holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  taken = (holder.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((resolve) => holder.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

describe('a node whose port is taken', () => {
  for (const command of ['web', 'gateway']) {
    it(`shoal ${command} exits 78 with one line naming the address and the fix, no stack`, async () => {
      const r = await runCli([command, '--app', APP, '--port', String(taken)], { env });
      expect(r.code).toBe(78);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(`^shoal: cannot listen on 127\\.0\\.0\\.1:${taken}: the port is in use .*choose another port`),
      );
    }, 60_000);
  }

  it('shoal start exits 78 with one line when the balancer port is taken, and starts no node', async () => {
    const r = await runCli(['start', '--app', APP, '--port', String(taken), '--web', '1', '--gateways', '1'], { env });
    expect(r.code).toBe(78);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^shoal: cannot listen on 127\\.0\\.0\\.1:${taken}: the port is in use .*the 2 nodes take the ports after it`,
      ),
    );
    expect(r.stdout).not.toMatch(/web-1|gateway-1/);
  }, 60_000);

  it('shoal gateway refuses a SHOAL_ORIGINS no browser sends with one line saying how to write it', async () => {
    // Before, it started and answered 403 to every handshake with nothing logged.
    const r = await runCli(['gateway', '--app', APP, '--port', String(await freePort())], {
      env: { ...env, SHOAL_ORIGINS: '127.0.0.1:23100' },
      timeoutMs: 20_000,
    });
    expect(r.code).toBe(78);
    expect(r.stderr.trim().split('\n')).toEqual([
      'shoal: SHOAL_ORIGINS has "127.0.0.1:23100", which no browser sends as an Origin, so no handshake would ever ' +
        'match it; write it as the browser sends it: http://127.0.0.1:23100',
    ]);
  }, 60_000);

  it('shoal gateway refuses a SHOAL_KEEP_SESSION_ALIVE it does not know, naming the choices', async () => {
    const r = await runCli(['gateway', '--app', APP, '--port', '0'], {
      env: { ...env, SHOAL_KEEP_SESSION_ALIVE: 'always' },
    });
    expect(r.code).toBe(78);
    expect(r.stderr.trim()).toMatch(
      /^shoal: SHOAL_KEEP_SESSION_ALIVE=always is not a rule: use open .* inbound .* off/,
    );
  }, 60_000);
});
