import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Examples and end-to-end tests import the package by name ('shoal', 'shoal/express', …), as a
 * user would. In the repo those names resolve to src/ through tsconfig.json's `paths` (tsx reads
 * them too); the same map serves vitest here.
 */
const tsconfig = JSON.parse(readFileSync(new URL('./tsconfig.json', import.meta.url), 'utf8')) as {
  compilerOptions: { paths: Record<string, [string]> };
};
const alias = Object.entries(tsconfig.compilerOptions.paths)
  // Longest first, so 'shoal/express' is not taken for 'shoal' + '/express'.
  .sort(([a], [b]) => b.length - a.length)
  .map(([name, [target]]) => ({
    find: new RegExp(`^${name.replace('/', '\\/')}$`),
    replacement: fileURLToPath(new URL(target, import.meta.url)),
  }));

/**
 * Tests that measure time under faults (failover bounds, zone cuts) get the machine to themselves:
 * they run one at a time, after everything else. The rest run two files at a time; most of their
 * time is spent waiting on servers and timers, not on a core. The bench smoke run is among them: at
 * 4 connections it checks that every scenario runs and writes its report, not how fast.
 */
const EXCLUSIVE = ['test/failover/**/*.test.ts', 'test/multihost/**/*.test.ts'];

/**
 * Files under test/failover/ that start a cluster of their own but time nothing under a fault: the
 * conformance suites and `shoal doctor` on a Redis Cluster, appends racing on a NATS cluster, and the
 * replicas of a NATS stream (a server is killed there, but only what doctor then says is checked).
 * They run with the shared files, on ports of their own, instead of holding the machine alone.
 */
const UNTIMED_CLUSTERS = [
  'test/failover/redis-cluster-conformance.test.ts',
  'test/failover/redis-cluster-doctor.test.ts',
  'test/failover/nats-racing-appends.test.ts',
  'test/failover/nats-replicas.test.ts',
];

/**
 * A worker runs its test files one after another in one process (isolate: false): starting a process
 * and importing the library again for each of ~120 files took ~140 s of the workers' time in one full
 * run (vitest's prepare and collect), 18–29 s this way. Tests leave nothing behind that the next file
 * could trip on: each closes its servers and stops its processes, env changes are undone
 * (vi.unstubAllEnvs, or by hand), and the globals a library replaces are put back after each file
 * (test/helpers/restore-globals.ts, run before each file).
 */
const SETUP_FILES: string[] = ['./test/helpers/restore-globals.ts'];

const shared = {
  pool: 'forks',
  isolate: false,
  setupFiles: SETUP_FILES,
  testTimeout: 30_000,
  hookTimeout: 60_000,
  teardownTimeout: 20_000,
} as const;

export default defineConfig({
  resolve: { alias },
  test: {
    ...shared,
    // Once for the run (the root project's), not per project.
    globalSetup: ['./test/global-setup.ts'],
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    projects: [
      {
        resolve: { alias },
        test: {
          ...shared,
          name: 'shared',
          // Every test file but those EXCLUSIVE names, plus UNTIMED_CLUSTERS.
          include: ['test/*.test.ts', 'test/!(failover|multihost)/**/*.test.ts', ...UNTIMED_CLUSTERS],
          sequence: { groupOrder: 0 },
        },
      },
      {
        resolve: { alias },
        test: {
          ...shared,
          name: 'exclusive',
          include: EXCLUSIVE,
          exclude: UNTIMED_CLUSTERS,
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
