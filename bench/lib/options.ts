import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './nodes.js';

/** Knobs every scenario shares; flags win over BENCH_* env, which win over the defaults. */
export interface BenchOptions {
  /** Smoke-run sizes: proves the scenario works, measures nothing worth quoting. */
  quick: boolean;
  /** Seconds of measured load per run. */
  durationS: number;
  /** Seconds of unmeasured load before each measured run (JIT, connection pools). */
  warmupS: number;
  connections: number;
  /** Measured runs per (implementation, route); medians are reported. */
  rounds: number;
  /** Concurrent requests per burst in the concurrency scenario. */
  requests: number;
  /** Nodes per implementation in multi-node scenarios. */
  nodes: number;
  /** Run the shoal server under `node --cpu-prof` and report its top costs. */
  profile: boolean;
  /** Run the shoal probe through tsx instead of compiled JavaScript (what `npm run probe` does). */
  tsx: boolean;
  /** Throughput scenarios: the server under test on a core of its own (bench/lib/cpus.ts); `--no-pin` to share. */
  pin: boolean;
  resultsDir: string;
  redisUrl: string;
}

const FLAGS = {
  quick: { type: 'boolean', default: false },
  profile: { type: 'boolean', default: false },
  tsx: { type: 'boolean', default: false },
  pin: { type: 'boolean' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  connections: { type: 'string' },
  rounds: { type: 'string' },
  requests: { type: 'string' },
  nodes: { type: 'string' },
  only: { type: 'string', multiple: true },
} as const;

export function parseBenchArgs(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env) {
  const { values } = parseArgs({ args: argv, options: FLAGS, allowPositionals: false, allowNegative: true });
  const quick = values.quick;
  const num = (flag: string | undefined, envName: string, full: number, smoke: number, min: number): number => {
    const raw = flag ?? env[envName];
    if (raw === undefined || raw === '') return quick ? smoke : full;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new Error(`${envName} / flag must be a number >= ${min}, got "${raw}"`);
    return n;
  };
  const options: BenchOptions = {
    quick,
    durationS: num(values.duration, 'BENCH_DURATION', 6, 2, 0.5),
    warmupS: num(values.warmup, 'BENCH_WARMUP', 1, 0, 0),
    connections: Math.floor(num(values.connections, 'BENCH_CONNECTIONS', 50, 10, 1)),
    rounds: Math.floor(num(values.rounds, 'BENCH_ROUNDS', 3, 1, 1)),
    requests: Math.floor(num(values.requests, 'BENCH_REQUESTS', 100, 25, 1)),
    nodes: Math.floor(num(values.nodes, 'BENCH_NODES', 3, 3, 1)),
    profile: values.profile || env.BENCH_PROFILE === '1',
    tsx: values.tsx || env.BENCH_TSX === '1',
    pin: values.pin ?? env.BENCH_PIN !== '0',
    resultsDir: env.BENCH_RESULTS_DIR ?? join(ROOT, 'bench', 'results'),
    redisUrl: env.BENCH_REDIS ?? env.SHOAL_TEST_REDIS ?? 'redis://127.0.0.1:6379/0',
  };
  return { options, only: values.only ?? [] };
}

/** A `--name` flag of a diagnostic's own parseArgs values that must be a positive integer. */
export function positiveFlag(values: Record<string, unknown>, name: string): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${values[name]}"`);
  return n;
}
