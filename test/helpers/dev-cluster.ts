import { type ChildProcess, spawn } from 'node:child_process';
import { BUILT_ENV, CLI, captureOutput, ROOT } from './processes.js';

export interface DevCluster {
  /** The dev balancer, e.g. http://127.0.0.1:41234 */
  url: string;
  child: ChildProcess;
  /** stdout and stderr as they arrived, interleaved. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** SIGKILLs the balancer and every node it started (one process group), and waits for the exit. */
  stop(): Promise<void>;
}

/**
 * Runs `shoal start` (balancer + supervised nodes) in its own process group and waits
 * until it prints the URL to open. Nodes listen on the ports after `port`.
 */
export async function startDevCluster(o: {
  app: string;
  /** --web and --gateways; left out, the command line does not give them (shoal start picks). */
  web?: number;
  gateways?: number;
  port: number;
  env: Record<string, string>;
  timeoutMs?: number;
  /** How to run the CLI: default the repo's build; a consumer test passes the installed bin. */
  cli?: string[];
  /** Working directory of the cluster (default the repo root). */
  cwd?: string;
  /** More options for `shoal start` (--quiet). */
  args?: string[];
}): Promise<DevCluster> {
  const counts = [
    ...(o.web === undefined ? [] : ['--web', String(o.web)]),
    ...(o.gateways === undefined ? [] : ['--gateways', String(o.gateways)]),
  ];
  const args = ['start', '--app', o.app, ...counts, ...(o.args ?? [])];
  const child = spawn(process.execPath, [...(o.cli ?? [CLI]), ...args, '--port', String(o.port)], {
    cwd: o.cwd ?? ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    // The repo's build loads its app with tsx configured for it; an installed CLI, as its user's would.
    env: { ...process.env, ...(o.cli ? {} : BUILT_ENV), ...o.env },
  });
  const output = captureOutput(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d;
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d;
  });
  const url = `http://127.0.0.1:${o.port}`;
  const stop = async () => {
    if (!child.pid || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
    await exited;
  };
  const timeoutMs = o.timeoutMs ?? 45_000;
  const deadline = Date.now() + timeoutMs;
  while (!output().includes(`open ${url}`)) {
    if (child.exitCode !== null) throw new Error(`shoal start exited (${child.exitCode}):\n${output()}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the cluster did not become ready in ${timeoutMs / 1000} s:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child, output, stdout: () => stdout, stderr: () => stderr, stop };
}
