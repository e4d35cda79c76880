import { execFile } from 'node:child_process';
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
