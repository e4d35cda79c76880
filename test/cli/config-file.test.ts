import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { applyConfigEnv, loadConfigFile } from '../../src/cli/config-file.js';
import { ConfigError } from '../../src/core/errors.js';
import { BUILT_ENV, CLI } from '../helpers/processes.js';

const dirs: string[] = [];
const dirWith = (name: string, text: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-config-'));
  dirs.push(dir);
  writeFileSync(join(dir, name), text);
  return dir;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('shoal.config', () => {
  it('loads defaults; the environment wins over the file', async () => {
    const dir = dirWith(
      'shoal.config.mjs',
      `export default { app: './app.ts', web: 2, gateways: 1, port: 9000, env: { SHOAL_STORE: 'memory:', SHOAL_BUS: 'memory:' } };`,
    );
    const { path, config } = await loadConfigFile(dir);
    expect(path).toBe(join(dir, 'shoal.config.mjs'));
    expect(config).toMatchObject({ app: './app.ts', web: 2, gateways: 1, port: 9000 });
    const env: NodeJS.ProcessEnv = { SHOAL_BUS: 'redis://set-by-env' };
    applyConfigEnv(config, env);
    expect(env).toEqual({ SHOAL_STORE: 'memory:', SHOAL_BUS: 'redis://set-by-env' });
  });

  it('has no effect when there is no file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-config-'));
    dirs.push(dir);
    expect(await loadConfigFile(dir)).toEqual({ path: null, config: {} });
  });

  it('refuses unknown settings, bad numbers and non-SHOAL env with a message naming them', async () => {
    await expect(loadConfigFile(dirWith('shoal.config.mjs', 'export default { wbe: 3 };'))).rejects.toThrow(
      /unknown setting wbe; did you mean web\?/,
    );
    await expect(loadConfigFile(dirWith('shoal.config.mjs', 'export default { xyz: 3, abc: 1 };'))).rejects.toThrow(
      /unknown setting\(s\) xyz, abc; allowed: app, web, gateways, port, env/,
    );
    await expect(loadConfigFile(dirWith('shoal.config.mjs', 'export default { web: -1 };'))).rejects.toThrow(
      /web must be a whole number from 0 to 1000, got -1/,
    );
    await expect(
      loadConfigFile(dirWith('shoal.config.mjs', `export default { env: { PATH: '/tmp' } };`)),
    ).rejects.toBeInstanceOf(ConfigError);
  });

  it('is read by the CLI: `shoal doctor` checks the store the file names', async () => {
    const dir = dirWith('shoal.config.mjs', `export default { env: { SHOAL_STORE: 'memory:' } };`);
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'doctor'], {
      cwd: dir,
      env: {
        ...process.env,
        ...BUILT_ENV,
        SHOAL_STORE: undefined,
        SHOAL_BUS: undefined,
        SHOAL_SECRETS: 'x'.repeat(32),
      },
    });
    expect(stdout).toMatch(/ok\s+session store memory:/);
  });
});
