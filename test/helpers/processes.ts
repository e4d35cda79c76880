import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A free TCP port on loopback, picked by the kernel (never a well-known one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface NodeProcess {
  name: string;
  port: number;
  url: string;
  child: ChildProcess;
  output: () => string;
  /** SIGKILL (default) or SIGTERM; resolves when the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Kills every process started through this module (afterAll safety net). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((c) => stopChild(c, 'SIGKILL')));
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/**
 * Starts a TypeScript entry point (run through tsx) with `--port` and waits
 * until `readyPath` answers 200, or fails with the process output.
 */
export async function startNode(options: {
  name: string;
  script: string;
  env?: Record<string, string | undefined>;
  args?: string[];
  port?: number;
  readyPath?: string;
  timeoutMs?: number;
}): Promise<NodeProcess> {
  const port = options.port ?? (await freePort());
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', options.script, ...(options.args ?? []), '--port', String(port)],
    {
      cwd: ROOT,
      env: { ...process.env, SHOAL_NODE_ID: options.name, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${options.name} exited with ${child.exitCode}:\n${out}`);
    try {
      const r = await fetch(url + (options.readyPath ?? '/healthz'));
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} did not become ready within the timeout:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: options.name,
    port,
    url,
    child,
    output: () => out,
    stop: (signal = 'SIGKILL') => stopChild(child, signal),
  };
}

/** `shoal start` takes `port` for its balancer and the ports after it for the nodes: a run of free ones. */
export async function freePortRun(length: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const start = 20_000 + Math.floor(Math.random() * 30_000);
    let ok = true;
    for (let p = start; p < start + length && ok; p++) ok = await free(p);
    if (ok) return start;
  }
  throw new Error(`no run of ${length} free ports found`);
}
