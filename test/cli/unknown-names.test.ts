import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliScratch, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';

/** A misspelt option or variable used to be ignored without a word; now it is named, with the nearest known one. */
const { dir, env } = cliScratch('unknown');

describe('misspelt names', () => {
  it('doctor fails an app module with a misspelt option, plain object or defineApp', async () => {
    const plain = join(dir, 'plain.app.mjs');
    writeFileSync(
      plain,
      'export default { session: { idleTimout: "5m" }, realtime: { authorise: () => true }, web: () => () => {} };\n',
    );
    const r = await runCli(['doctor', '--app', plain], { env: env({}) });
    expect(r.stdout).toMatch(
      /^FAIL {2}.*unknown options session\.idleTimout \(did you mean idleTimeout\?\), realtime\.authorise \(did you mean authorize\?\)$/m,
    );
    expect(r.stdout).not.toMatch(/no problems found/);
    expect(r.code).toBe(1);
  }, 30_000);

  it('doctor fails a SHOAL_* variable that is a misspelling of a setting, and names others it does not read', async () => {
    const r = await runCli(['doctor'], {
      env: env({ SHOAL_STROE: 'redis://127.0.0.1:6379', SHOAL_WIDGET_COLOR: 'red' }),
    });
    expect(r.stdout).toMatch(
      /^FAIL {2}SHOAL_STROE is not a shoal setting, so it is ignored; did you mean SHOAL_STORE\?$/m,
    );
    expect(r.stdout).toMatch(
      /^warn {2}SHOAL_WIDGET_COLOR is not a shoal setting: fine if your app reads it, else remove it$/m,
    );
    expect(r.code).toBe(1);
  }, 30_000);

  it('a web node warns about a misspelt SHOAL_* variable when it starts', async () => {
    const app = join(dir, 'web.app.mjs');
    writeFileSync(app, 'export default { web: () => (req, res) => res.end() };\n');
    // The node starts (and is stopped by the test's timeout); the warning comes before anything is opened.
    const r = await runCli(['web', '--app', app, '--port', String(await freePort())], {
      env: env({ SHOAL_SECRET: 'x', SHOAL_IDLE_TIMEOUT: '5' }),
    });
    expect(r.stderr).toMatch(
      /^shoal: warning: SHOAL_SECRET is not a shoal setting, so it is ignored; did you mean SHOAL_SECRETS\?$/m,
    );
    expect(r.code).toBe(78);
  }, 30_000);

  it('shoal start warns once, before any node starts, and --quiet keeps the warning', async () => {
    const app = join(dir, 'start.app.mjs');
    writeFileSync(app, 'export default { web: () => (req, res) => res.end() };\n');
    // A memory store across 2 nodes stops the cluster before a node starts: what is printed is start's own.
    const r = await runCli(['start', '--app', app, '--web', '2', '--port', String(await freePort()), '--quiet'], {
      env: env({ SHOAL_STROE: 'redis://127.0.0.1:6379', SHOAL_STORE: 'memory:' }),
    });
    const warnings = r.stderr.match(
      /^shoal: warning: SHOAL_STROE is not a shoal setting.*did you mean SHOAL_STORE\?$/gm,
    );
    expect(warnings, r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(/SHOAL_STORE=memory: keeps sessions inside one process/);
  }, 30_000);

  it('shoal.config refuses a misspelt setting with the nearest one', async () => {
    const cwd = mkdtempSync(join(dir, 'config-'));
    writeFileSync(join(cwd, 'shoal.config.mjs'), 'export default { gatways: 2 };\n');
    const r = await runCli(['doctor'], { cwd, env: env({}) });
    expect(r.stderr.trim()).toMatch(/^shoal: .*shoal\.config\.mjs: unknown setting gatways; did you mean gateways\?$/);
    expect(r.code).toBe(78);
  }, 30_000);
});
