import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { hasCommand } from './has-command.js';

/**
 * Which cores a throughput run's processes may use. Pinned, the server under test has a core of its
 * own and everything else (load generator, Redis, a delay proxy, the benchmark itself) shares the
 * rest, as a server with Redis on another machine would run. Unpinned, all of them compete for every
 * core: Redis's work for the server being measured, and the load generator's, take from the server's
 * CPU, and how much depends on the scheduler's choices from round to round.
 */
export interface CpuPlan {
  pinned: boolean;
  /** Prefix for a server process's command line (`taskset -c N`), empty when not pinned. */
  server: string[];
  /** Prefix for every other process the run starts. */
  others: string[];
  /** One line for the report. */
  description: string;
}

const UNPINNED: CpuPlan = {
  pinned: false,
  server: [],
  others: [],
  description: 'not pinned: every process may run on every core',
};

/**
 * The plan for this machine: the last core for the server, the others for the rest, when asked
 * to pin and the machine has two cores or more and `taskset`. This process moves to the others
 * at once, so it never takes the server's core either.
 */
export function cpuPlan(pin: boolean): CpuPlan {
  if (!pin) return UNPINNED;
  // Once made, the same plan for every scenario of the run: this process is on fewer cores by then.
  planned ??= makePlan();
  return planned;
}

let planned: CpuPlan | undefined;

function makePlan(): CpuPlan {
  const cores = availableParallelism();
  if (cores < 2 || !hasCommand('taskset')) return UNPINNED;
  const server = String(cores - 1);
  const others = cores === 2 ? '0' : `0-${cores - 2}`;
  execFileSync('taskset', ['-a', '-p', '-c', others, String(process.pid)], { stdio: 'ignore' });
  return {
    pinned: true,
    server: ['taskset', '-c', server],
    others: ['taskset', '-c', others],
    description: `pinned: the server under test alone on core ${server}; the load generator, Redis and the benchmark on ${cores === 2 ? 'core' : 'cores'} ${others}`,
  };
}

/** `command args` run under `prefix` (a launcher that execs it in place, so the pid stays). */
export function launched(prefix: string[], command: string, args: string[]): [string, string[]] {
  const [first, ...rest] = prefix;
  return first === undefined ? [command, args] : [first, [...rest, command, ...args]];
}
