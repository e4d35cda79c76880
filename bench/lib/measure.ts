import { join } from 'node:path';
import { launched } from './cpus.js';
import { nodeArgsFor, ROOT, spawnTracked } from './nodes.js';

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  /** Append a per-request counter to `body`, so every write really changes the stored value. */
  varyBody?: boolean;
  headers?: Record<string, string>;
  /** One Cookie header per connection (round-robin over connections); none = anonymous. */
  cookies?: string[];
  connections: number;
  durationS: number;
}

export interface LoadResult {
  requestsPerSec: number;
  requests: number;
  durationS: number;
  latencyMs: { avg: number; p50: number; p90: number; p99: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
}

const LOAD_SCRIPT = join(ROOT, 'bench', 'lib', 'load.mjs');

/**
 * Runs autocannon in a separate process against `spec.url` and returns its summary; under `launcher`
 * (e.g. `taskset -c 0`) when given.
 */
export async function measure(spec: LoadSpec, launcher: string[] = []): Promise<LoadResult> {
  const [command, args] = launched(launcher, process.execPath, [...nodeArgsFor(LOAD_SCRIPT), JSON.stringify(spec)]);
  const child = spawnTracked(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d;
  });
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-10_000);
  });
  const limitMs = spec.durationS * 1000 + 60_000;
  const code = await new Promise<number | string | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('exit', (c, signal) => {
      clearTimeout(timer);
      resolve(c ?? signal);
    });
  });
  const line = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !line.startsWith('{'))
    throw new Error(`load generator for ${spec.method} ${spec.url}${spec.path} failed (${code}):\n${err || out}`);
  return JSON.parse(line) as LoadResult;
}
