import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { BUILT_ENV, CLI, ROOT } from './processes.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI (the current build, by absolute path so any cwd works) once and collects what it
 * printed. Bounded by `timeoutMs`: a command that should fail fast and hangs fails.
 */
export function runCli(
  args: string[],
  o: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        cwd: o.cwd ?? ROOT,
        env: { ...process.env, ...BUILT_ENV, ...o.env },
        timeout: o.timeoutMs ?? 60_000,
        killSignal: 'SIGKILL',
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * A scratch directory for one CLI test file (removed after it), and the environment a node needs there
 * (a SQLite store in it, a secret, an origin), plus the test's own settings.
 */
export function cliScratch(name: string): {
  dir: string;
  env: (more?: Record<string, string>) => Record<string, string>;
} {
  const dir = mkdtempSync(join(tmpdir(), `shoal-${name}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    env: (more = {}) => ({
      SHOAL_STORE: `sqlite:${join(dir, `${name}.db`)}`,
      SHOAL_SECRETS: 'a-test-secret-of-at-least-32-characters-0123456789',
      SHOAL_ORIGINS: 'http://localhost:8080',
      ...more,
    }),
  };
}
