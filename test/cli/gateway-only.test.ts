import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, createWebNode, defineApp } from 'shoal';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { freePort, startNode, stopAll } from '../helpers/processes.js';

/**
 * Gateways for an app not written in Node (docs/server-api.md): the app module needs no web(), and
 * with every gateway setting in the environment there need be no module at all.
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-gateway-only-'));
afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

const env = () => ({
  SHOAL_STORE: `sqlite:${join(dir, 'gw.db')}`,
  SHOAL_SECRETS: 'a-test-secret-of-at-least-32-characters-0123456789',
  SHOAL_ORIGINS: 'http://127.0.0.1:8080',
  SHOAL_CONNECT_PROXY_URL: 'http://127.0.0.1:9/shoal/connect',
});
const loosely = <A extends unknown[], R>(f: (...args: A) => R, ...args: unknown[]): R => f(...(args as A));

describe('gateway-only apps', () => {
  it('defineApp takes a definition without web(); a web node still needs it', async () => {
    const app = defineApp({ realtime: { origins: ['http://127.0.0.1:8080'] } });
    expect(app.web).toBeUndefined();
    expect(() => loosely(defineApp, { realtime: {}, web: 'index.html' })).toThrow(ConfigError);
    await expect(createWebNode(app, { nodeId: 'w', env: {}, store: 'memory:', bus: 'memory:' })).rejects.toThrow(
      /^createWebNode\(\) needs an app with web\(ctx\)/,
    );
  });

  it('shoal gateway runs a module without web(), and shoal web refuses it in one line', async () => {
    const path = join(dir, 'gateway.app.mjs');
    writeFileSync(path, 'export default { realtime: {} };\n');
    const gateway = await startNode({
      name: 'gateway-only',
      script: 'src/cli/main.ts',
      args: ['gateway', '--app', path],
      env: env(),
    });
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    await gateway.stop('SIGTERM');
    const web = await runCli(['web', '--app', path, '--port', String(await freePort())], { env: env() });
    expect(web.code).toBe(78);
    expect(web.stderr.trim()).toMatch(
      /^shoal: .*gateway\.app\.mjs has no web\(ctx\), so it runs on shoal gateway only/,
    );
  }, 60_000);

  it('shoal gateway without --app runs from the environment alone', async () => {
    const gateway = await startNode({
      name: 'gateway-env',
      script: 'src/cli/main.ts',
      args: ['gateway'],
      env: env(),
    });
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    expect(gateway.output()).toMatch(/no app module/);
    await gateway.stop('SIGTERM');
  }, 60_000);
});
