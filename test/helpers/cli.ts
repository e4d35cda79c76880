import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './processes.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI from source once (through tsx, resolved from the repo so any cwd works) and
 * collects what it printed. Bounded by `timeoutMs`: a command that should fail fast and hangs fails.
 */
export function runCli(
  args: string[],
  o: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<CliResult> {
  const loader = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', loader, join(ROOT, 'src/cli/main.ts'), ...args],
      {
        cwd: o.cwd ?? ROOT,
        env: { ...process.env, ...o.env },
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
