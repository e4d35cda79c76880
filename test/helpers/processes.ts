import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The CLI as `npm run build` compiles it. Tests start it rather than src/cli/main.ts through tsx: tsx
 * costs a process ~0.3 s more CPU to start, and tests start a few hundred. It is the current source:
 * test/global-setup.ts rebuilds dist/ before the run whenever the sources changed since its build.
 */
export const CLI = join(ROOT, 'dist/cli/main.js');

/**
 * Env for every process a test starts from the repo. tsx, which loads TypeScript (an example app,
 * a test worker), then reads this tsconfig rather than the repo's, whose `paths` map 'shoal' to
 * src/: without them the name resolves as it does for a user, to the package's exports in dist/. The
 * CLI from dist/ and the app it loads then share one copy of the library, the build under test.
 */
export const BUILT_ENV: Record<string, string> = {
  TSX_TSCONFIG_PATH: join(ROOT, 'test/helpers/tsconfig.built.json'),
};

/** Node arguments to run `script`: TypeScript through tsx, JavaScript (the CLI) as it is. */
export function nodeArgs(script: string): string[] {
  return script.endsWith('.ts') ? ['--import', 'tsx', script] : [script];
}

/**
 * What `child` writes to stdout and stderr, in the order it arrives, read with the returned
 * function: all of it, or its last `keepLast` characters (a long-running process that talks a lot
 * must not grow the test's memory).
 */
export function captureOutput(child: ChildProcess, keepLast = Number.POSITIVE_INFINITY): () => string {
  let out = '';
  const append = (d: Buffer | string) => {
    out += d;
    if (out.length > keepLast) out = out.slice(-keepLast);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return () => out;
}

/**
 * A free TCP port on loopback for a process to bind later. Taken below the kernel's ephemeral range,
 * like freePortRun: a port the kernel hands out for port 0 is handed out again to the next outgoing
 * connection of a test running beside this one, which then holds it when the process binds.
 */
export function freePort(): Promise<number> {
  return freePortRun(1);
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
 * Starts an entry point (a TypeScript one through tsx, or CLI) with `--port` and waits
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
    [...nodeArgs(options.script), ...(options.args ?? []), '--port', String(port)],
    {
      cwd: ROOT,
      env: { ...process.env, ...BUILT_ENV, SHOAL_NODE_ID: options.name, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  running.add(child);
  child.once('exit', () => running.delete(child));
  const output = captureOutput(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${options.name} exited with ${child.exitCode}:\n${output()}`);
    try {
      const r = await fetch(url + (options.readyPath ?? '/healthz'));
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} did not become ready within the timeout:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: options.name,
    port,
    url,
    child,
    output,
    stop: (signal = 'SIGKILL') => stopChild(child, signal),
  };
}

function ephemeralRange(): [number, number] {
  try {
    const [low = 32_768, high = 60_999] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    return [low, high];
  } catch {
    return [32_768, 60_999];
  }
}

/** `shoal start` takes `port` for its balancer and the ports after it for the nodes: a run of free ones. */
export async function freePortRun(length: number): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  // Below the kernel's ephemeral range (32768 and up by default), where port-0 listeners and every
  // outgoing connection of the tests running beside this one take their ports: a run chosen there
  // can be taken between this check and the moment the nodes bind it.
  const [low] = ephemeralRange();
  const top = Math.min(low, 32_768) - length;
  for (let attempt = 0; attempt < 50; attempt++) {
    const start = 10_000 + Math.floor(Math.random() * Math.max(1, top - 10_000));
    let ok = true;
    for (let p = start; p < start + length && ok; p++) ok = await free(p);
    if (ok) return start;
  }
  throw new Error(`no run of ${length} free ports found`);
}
