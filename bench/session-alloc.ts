/**
 * Bytes allocated per session request, by each server of scenario 1 (the same peers, routes and
 * Redis): what the garbage collector has to deal with, the largest share of a session layer's CPU on
 * this path. Unlike CPU time it does not move with what else the machine runs, so a change to the
 * hot path shows here on a busy machine too.
 *
 * `npx tsx bench/session-alloc.ts [--impls express-shoal,express-session,bare] [--requests 4000]
 * [--rounds 3] [--connections 10] [--sites 8]`
 *
 * Each server runs with bench/lib/alloc-sampler.mjs preloaded (V8's sampling heap profiler, collected
 * objects included); each round warms a route up, then samples exactly `--requests` requests.
 * Writes bench/results/session-alloc.md.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bareOf, IMPLS, type ImplName, implSpec } from './lib/impls.js';
import { type BenchNode, owe, ROOT, startNode } from './lib/nodes.js';
import { positiveFlag } from './lib/options.js';
import { cleanupRun, newRunId, redisUnavailable } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { load, login, median, ROUTES, type Route } from './lib/session-load.js';

const { values } = parseArgs({
  options: {
    impls: { type: 'string', default: 'express-shoal,express-session,bare,fastify-shoal,fastify-session,fastify-bare' },
    requests: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '10' },
    sites: { type: 'string', default: '8' },
    redis: { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const impls = (values.impls as string).split(',') as ImplName[];
for (const name of impls)
  if (!IMPLS[name]) throw new Error(`--impls: unknown server "${name}"; one of ${Object.keys(IMPLS).join(', ')}`);
const requests = positiveFlag(values, 'requests');
const rounds = positiveFlag(values, 'rounds');
const connections = positiveFlag(values, 'connections');
const siteCount = positiveFlag(values, 'sites');

interface Sample {
  bytesPerRequest: number;
  sites: Array<[string, number]>;
}

async function sample(node: BenchNode, pid: number, out: string, route: Route, cookies: string[]): Promise<Sample> {
  await load(node, route, cookies, Math.ceil(requests / 2)); // warm-up: JIT, pools, caches
  await rm(out, { force: true });
  process.kill(pid, 'SIGUSR2');
  await load(node, route, cookies, requests);
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const { bytes, sites } = JSON.parse(await readFile(out, 'utf8')) as { bytes: number; sites: Sample['sites'] };
      return { bytesPerRequest: bytes / requests, sites: sites.map(([site, b]) => [site, b / requests]) };
    } catch {}
    if (Date.now() > deadline) throw new Error(`${node.name} wrote no allocation sample to ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const down = await redisUnavailable(values.redis as string);
if (down) throw new Error(down);
const runId = newRunId();
const paid = owe(() => cleanupRun(values.redis as string, runId));
const dir = await mkdtemp(join(tmpdir(), `${runId}-alloc-`));
const preload = join(ROOT, 'bench/lib/alloc-sampler.mjs');
const load0 = loadavg()[0] as number;
const results = new Map<string, Sample[]>();
const key = (impl: ImplName, route: Route) => `${impl} ${route}`;
try {
  for (const name of impls) {
    const impl = IMPLS[name];
    const out = join(dir, `${name}.json`);
    const spec = implSpec(impl, values.redis as string, runId, { nodeFlags: ['--import', preload] });
    const node = await startNode({ ...spec, env: { ...spec.env, BENCH_ALLOC_OUT: out } });
    try {
      const cookies = await login(node, runId, impl.stateful, connections);
      for (let round = 0; round < rounds; round++)
        for (const route of Object.keys(ROUTES) as Route[]) {
          const s = await sample(node, node.pid, out, route, cookies);
          results.set(key(name, route), [...(results.get(key(name, route)) ?? []), s]);
          console.log(`${name} ${route} round ${round + 1}/${rounds}: ${fmt(s.bytesPerRequest)} bytes/request`);
        }
    } finally {
      await node.stop();
    }
  }
} finally {
  await cleanupRun(values.redis as string, runId);
  paid();
  await rm(dir, { recursive: true, force: true });
}

const bytesOf = (impl: ImplName, route: Route) => (results.get(key(impl, route)) ?? []).map((s) => s.bytesPerRequest);
const spread = (xs: number[]) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
/** The bare server of the same framework, which a session layer's cost is counted above, if it ran. */
const bareRun = (impl: ImplName): ImplName | undefined => {
  const bare = bareOf(impl);
  return impls.includes(bare) && bare !== impl ? bare : undefined;
};
const rows = impls.flatMap((impl) =>
  (Object.keys(ROUTES) as Route[]).map((route) => {
    const bare = bareRun(impl);
    const above = bare ? fmt(median(bytesOf(impl, route)) - median(bytesOf(bare, route))) : '—';
    return [IMPLS[impl].label, route, spread(bytesOf(impl, route)), above];
  }),
);
const siteLines = impls.flatMap((impl) =>
  (Object.keys(ROUTES) as Route[]).map((route) => {
    const last = results.get(key(impl, route))?.at(-1);
    const sites = (last?.sites ?? [])
      .slice(0, siteCount)
      .map(([site, b]) => `${fmt(b)} ${site.replace(ROOT, '').replace(/.*node_modules\//, '')}`);
    return `- ${impl} ${route}: ${sites.join(' · ')}`;
  }),
);
const report = [
  '## Bytes allocated per session request',
  '',
  `\`npx tsx bench/session-alloc.ts --impls ${impls.join(',')} --requests ${requests} --rounds ${rounds} --connections ${connections}\`, ` +
    `load average ${fmt(load0, 2)} → ${fmt(loadavg()[0] as number, 2)}; median (min–max) over ${rounds} rounds; ` +
    '"above bare": the median minus that of the bare server of the same framework.',
  '',
  table(['server', 'route', 'bytes / request', 'above bare'], rows),
  '',
  `Largest allocating functions, bytes per request, last round:`,
  '',
  ...siteLines,
  '',
].join('\n');
console.log(`\n${report}`);
await writeFile(join(ROOT, 'bench/results/session-alloc.md'), report);
process.exit(0);
