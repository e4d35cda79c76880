import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
// The repository root and a kernel-picked free loopback port: the same helpers the tests use.
import { captureOutput, freePort, ROOT } from '../../test/helpers/processes.js';
import { launched } from './cpus.js';

export { freePort, ROOT };

/** Every child a benchmark starts: killed when the benchmark exits, however it exits. */
const running = new Set<ChildProcess>();
/** Async clean-ups (Redis keys of the run) still owed if the run is interrupted. */
const owed = new Set<() => Promise<unknown>>();
let hooked = false;

function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', killAll);
  const signals = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
  for (const [signal, code] of Object.entries(signals)) {
    process.once(signal, () => {
      killAll();
      // Bounded: an interrupted run must still exit if Redis is what hangs.
      const timeout = new Promise((resolve) => setTimeout(resolve, 3000).unref());
      const cleanups = Promise.allSettled([...owed].map((fn) => fn()));
      void Promise.race([cleanups, timeout]).finally(() => process.exit(code));
    });
  }
}

/** Runs `fn` on Ctrl-C / SIGTERM too; call the returned function once it has run normally. */
export function owe(fn: () => Promise<unknown>): () => void {
  hookExit();
  owed.add(fn);
  return () => owed.delete(fn);
}

/** spawn() whose child dies with this process (exit, Ctrl-C, SIGTERM). */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  hookExit();
  const child = spawn(command, args, options);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** Node arguments to run a script: TypeScript goes through tsx, plain .mjs does not need it. */
export function nodeArgsFor(script: string): string[] {
  return script.endsWith('.ts') ? ['--import', 'tsx', script] : [script];
}

export interface BenchNode {
  name: string;
  url: string;
  pid: number;
  output(): string;
  /** SIGTERM (lets `--cpu-prof` write its profile), SIGKILL if still alive after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface NodeSpec {
  name: string;
  /** Path relative to the repository root. */
  script: string;
  env?: Record<string, string | undefined>;
  /** Extra flags for node itself, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** A command node runs under, e.g. ['valgrind', '--tool=callgrind']; it must exec node in place (same pid). */
  launcher?: string[];
  readyPath?: string;
  timeoutMs?: number;
}

/** Starts one server with `--port <free port>` and waits until `readyPath` answers 200. */
export async function startNode(spec: NodeSpec): Promise<BenchNode> {
  const port = await freePort();
  const nodeArgs = [...(spec.nodeFlags ?? []), ...nodeArgsFor(spec.script), '--port', String(port)];
  const [command, args] = launched(spec.launcher ?? [], process.execPath, nodeArgs);
  const child = spawnTracked(command, args, {
    cwd: ROOT,
    env: { ...process.env, SHOAL_NODE_ID: spec.name, ...spec.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The tail only: a chatty server must not grow the benchmark's memory.
  const output = captureOutput(child, 20_000);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (spec.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${spec.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output()}`);
    try {
      const r = await fetch(url + (spec.readyPath ?? '/healthz'), { signal: AbortSignal.timeout(1000) });
      if (r.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${spec.name} did not answer ${spec.readyPath ?? '/healthz'} within the timeout:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: spec.name,
    url,
    pid: child.pid ?? -1,
    output,
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Starts `count` copies of a server (names suffixed 1…count) in parallel. */
export async function startNodes(count: number, spec: NodeSpec): Promise<BenchNode[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      startNode({ ...spec, name: count > 1 ? `${spec.name}-${i + 1}` : spec.name }),
    ),
  );
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stopNodes(nodes);
    throw failed.reason;
  }
  return nodes;
}

export async function stopNodes(nodes: BenchNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
}

/** Starts bench/lib/delay-proxy.ts in front of a redis:// URL; resolves to the URL through it. */
export async function startDelayProxy(
  redisUrl: string,
  oneWayDelayMs: number,
  launcher: string[] = [],
): Promise<{ url: string; pid: number; stop(): void }> {
  const target = new URL(redisUrl);
  const proxyArgs = [
    ...nodeArgsFor('bench/lib/delay-proxy.ts'),
    target.hostname,
    target.port || '6379',
    String(oneWayDelayMs),
  ];
  const [command, args] = launched(launcher, process.execPath, proxyArgs);
  const child = spawnTracked(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('delay proxy did not start within 20 s')), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d;
      const line = out.split('\n')[0] ?? '';
      if (!out.includes('\n')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`delay proxy exited (${code}) before listening`)));
  });
  const url = new URL(redisUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return { url: url.toString(), pid: child.pid ?? -1, stop: () => child.kill('SIGTERM') };
}
