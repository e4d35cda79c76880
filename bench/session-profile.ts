/**
 * A CPU profile of one Express peer of scenario 1 on one route: where the time of a session request
 * goes, by function and by area (shoal's files, each npm package, node internals, the garbage collector).
 *
 * `npx tsx bench/session-profile.ts [--impl express-shoal] [--route write] [--requests 20000]
 * [--connections 10] [--interval 100] [--keep DIR]`
 *
 * The server runs natively (shoal compiled, as in production) with `--cpu-prof` sampling every
 * `--interval` µs; after one login per connection it answers `--requests` requests of the route and
 * stops. Start-up and the logins are in the profile too, a small share next to the requests.
 * Shares of busy time move little with machine load; milliseconds do.
 * Writes bench/results/session-profile-<impl>-<route>.md; `--keep DIR` also copies the .cpuprofile
 * there (for Chrome DevTools, or to compare two servers function by function).
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { implScript } from './lib/build.js';
import { profileMarkdown, summarizeProfile } from './lib/cpuprofile.js';
import { cpuPlan } from './lib/cpus.js';
import { IMPLS, type ImplName, implSpec } from './lib/impls.js';
import { owe, ROOT, startNode } from './lib/nodes.js';
import { cleanupRun, newRunId, redisUnavailable } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { load, login, ROUTES, type Route } from './lib/session-load.js';

const { values } = parseArgs({
  options: {
    impl: { type: 'string', default: 'express-shoal' },
    route: { type: 'string', default: 'write' },
    requests: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '10' },
    interval: { type: 'string', default: '100' },
    redis: { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
    keep: { type: 'string' },
  },
});
const name = values.impl as ImplName;
const impl = IMPLS[name];
if (!impl) throw new Error(`--impl: unknown server "${name}"; one of ${Object.keys(IMPLS).join(', ')}`);
const route = values.route as Route;
if (!(route in ROUTES)) throw new Error(`--route: one of ${Object.keys(ROUTES).join(', ')}`);
const requests = Number(values.requests);
const connections = Number(values.connections);

const down = await redisUnavailable(values.redis as string);
if (down) throw new Error(down);
const runId = newRunId();
const paid = owe(() => cleanupRun(values.redis as string, runId));
const dir = await mkdtemp(join(tmpdir(), `${runId}-profile-`));
// The server alone on a core, as in scenario 1: its samples are then its own work, not the scheduler's.
const cpus = cpuPlan(true);
const load0 = loadavg()[0] as number;
let report: string;
try {
  const script = await implScript({ tsx: false }, impl);
  const flags = ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', String(values.interval)];
  const node = await startNode({
    ...implSpec(impl, values.redis as string, runId, { script, nodeFlags: flags }),
    launcher: cpus.server,
  });
  try {
    const cookies = await login(node, runId, impl.stateful, connections);
    await load(node, route, cookies, requests);
  } finally {
    await node.stop();
  }
  const all = await summarizeProfile(dir, 15, 1000);
  if (values.keep) {
    await mkdir(values.keep, { recursive: true });
    await cp(all.file, join(values.keep, `${name}-${route}.cpuprofile`));
  }
  const summary = { ...all, byArea: all.byArea.slice(0, 15) };
  const own = all.byArea.filter((a) => a.name.startsWith('/src/'));
  const metricsLib = all.byArea.find((a) => a.name === 'npm: prom-client');
  const ownMs = own.reduce((sum, a) => sum + a.selfMs, 0);
  report = [
    `## CPU profile: ${impl.label}, ${route} route`,
    '',
    `\`npx tsx bench/session-profile.ts --impl ${name} --route ${route} --requests ${requests} ` +
      `--connections ${connections} --interval ${values.interval}\`, node ${process.version}, ` +
      `load average ${fmt(load0, 2)} → ${fmt(loadavg()[0] as number, 2)}; ${cpus.description}.`,
    '',
    profileMarkdown(summary).replace(` (\`${summary.file}\`)`, ''),
    '',
    `shoal's own files (src/), self time: ${fmt(ownMs)} ms, ${fmt((100 * ownMs) / all.busyMs, 1)} % of busy, ` +
      `${fmt((1000 * ownMs) / requests, 2)} µs per request:`,
    '',
    table(
      ['file', 'self ms', 'share of busy'],
      own.map((a) => [a.name, fmt(a.selfMs), `${fmt(a.percent, 2)} %`]),
    ),
    '',
    `prom-client (shoal's metrics, called from src/stores/instrument.ts), self time: ${fmt(metricsLib?.selfMs ?? 0)} ms, ` +
      `${fmt(metricsLib?.percent ?? 0, 2)} % of busy.`,
    '',
  ].join('\n');
} finally {
  await cleanupRun(values.redis as string, runId);
  paid();
  await rm(dir, { recursive: true, force: true });
}
console.log(report);
await writeFile(join(ROOT, `bench/results/session-profile-${name}-${route}.md`), report);
process.exit(0);
