import { type ChildProcess, spawn } from 'node:child_process';
import { BUILT_ENV, CLI, captureOutput, ROOT } from '../helpers/processes.js';

export interface ShoalNode {
  name: string;
  port: number;
  url: string;
  child: ChildProcess;
  output: () => string;
  /** Resolves when the process has exited (at once if it already has). */
  exited: () => Promise<void>;
  signal(signal: NodeJS.Signals): void;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Runs the real CLI, `shoal <web|gateway> --app examples/probe/shoal.app.ts --port P`,
 * exactly as a container would (the built dist/), and waits for its /readyz.
 */
export async function startShoal(o: {
  command: 'web' | 'gateway';
  name: string;
  port: number;
  env: Record<string, string>;
  timeoutMs?: number;
  /** The app module (default examples/probe/shoal.app.ts). */
  app?: string;
}): Promise<ShoalNode> {
  const child = spawn(
    process.execPath,
    [CLI, o.command, '--app', o.app ?? 'examples/probe/shoal.app.ts', '--port', String(o.port)],
    {
      cwd: ROOT,
      env: { ...process.env, ...BUILT_ENV, ...o.env, SHOAL_NODE_ID: o.name },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );
  const output = captureOutput(child);
  const url = `http://127.0.0.1:${o.port}`;
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${o.name} exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${o.name} was not ready within the timeout:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: o.name,
    port: o.port,
    url,
    child,
    output,
    exited: () => exit,
    signal: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** SIGKILLs every node still running (afterAll safety net). */
export async function killAllShoal(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** The JSON log lines a node printed (pino-style `{"level":…,"msg":…}`). */
export function logLines(node: ShoalNode): Array<Record<string, unknown>> {
  return node
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}
