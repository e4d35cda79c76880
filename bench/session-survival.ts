/**
 * Bytes per session request that outlive a young-generation collection, by each server of scenario 1
 * (the same peers, routes and Redis): what the scavenges copy and promote, the part of the garbage
 * collector's work that grows with what a server keeps reachable, not with what it allocates.
 *
 * `npx tsx bench/session-survival.ts [--impls express-shoal,express-floor,bare,…] [--requests 20000]
 * [--warmup 8000] [--rounds 3] [--connections 10]`
 *
 * Each server runs with `--trace-gc-nvp` (V8 prints one line per collection); after a warm-up, each
 * round sends exactly `--requests` requests of a route and sums the scavenges' `new_space_survived`
 * (bytes copied within the young generation) and `promoted` (bytes moved to the old one) printed
 * meanwhile. A request's own objects die young: what survives is what something kept reachable past
 * the request (a queue, a WeakMap entry whose value reaches its key), promoted garbage left for the
 * next full collection. Bytes, unlike CPU time, do not move with what else the machine runs.
 * shoal runs compiled (bench/lib/build.ts), as in production. Writes bench/results/session-survival.md.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { implScript } from './lib/build.js';
import { bareOf, IMPLS, type ImplName, implSpec } from './lib/impls.js';
import { owe, ROOT, startNode } from './lib/nodes.js';
import { positiveFlag } from './lib/options.js';
import { cleanupRun, newRunId, redisUnavailable } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { load, login, median, ROUTES, type Route } from './lib/session-load.js';

const { values } = parseArgs({
  options: {
    impls: {
      type: 'string',
      default:
        'express-shoal,express-floor,express-session,bare,fastify-shoal,fastify-session,fastify-bare,node-shoal,node-bare,hono-shoal,hono-bare',
    },
    requests: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '8000' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '10' },
    redis: { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const impls = (values.impls as string).split(',') as ImplName[];
for (const name of impls)
  if (!IMPLS[name]) throw new Error(`--impls: unknown server "${name}"; one of ${Object.keys(IMPLS).join(', ')}`);
const requests = positiveFlag(values, 'requests');
const warmup = positiveFlag(values, 'warmup');
const rounds = positiveFlag(values, 'rounds');
const connections = positiveFlag(values, 'connections');

interface Round {
  survived: number;
  promoted: number;
  scavenges: number;
}

/** The scavenge lines of a --trace-gc-nvp log, from line `from` on, summed per request. */
function scavenges(log: string, from: number): { round: Round; lines: number } {
  const lines = log.split('\n');
  const round: Round = { survived: 0, promoted: 0, scavenges: 0 };
  const field = (line: string, name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(line)?.[1] ?? 0);
  for (const line of lines.slice(from)) {
    if (!/\bgc=s\b/.test(line)) continue;
    round.scavenges++;
    round.survived += field(line, 'new_space_survived') / requests;
    round.promoted += field(line, 'promoted') / requests;
  }
  return { round, lines: lines.length - 1 };
}

const down = await redisUnavailable(values.redis as string);
if (down) throw new Error(down);
const runId = newRunId();
const paid = owe(() => cleanupRun(values.redis as string, runId));
const dir = await mkdtemp(join(tmpdir(), `${runId}-survival-`));
const load0 = loadavg()[0] as number;
const results = new Map<string, Round[]>();
const key = (impl: ImplName, route: Route) => `${impl} ${route}`;
try {
  for (const name of impls) {
    const impl = IMPLS[name];
    const script = await implScript({ tsx: false }, impl);
    const log = join(dir, `${name}.log`);
    const spec = implSpec(impl, values.redis as string, runId, { script, nodeFlags: ['--trace-gc-nvp'] });
    // The trace goes to a file of its own: it is long, and startNode keeps only an output's tail.
    const node = await startNode({ ...spec, launcher: ['bash', '-c', `exec "$0" "$@" >'${log}' 2>&1`] });
    try {
      const cookies = await login(node, runId, impl.stateful, connections);
      for (let round = 0; round < rounds; round++)
        for (const route of Object.keys(ROUTES) as Route[]) {
          await load(node, route, cookies, warmup);
          const from = scavenges(await readFile(log, 'utf8'), 0).lines;
          await load(node, route, cookies, requests);
          const { round: r } = scavenges(await readFile(log, 'utf8'), from);
          results.set(key(name, route), [...(results.get(key(name, route)) ?? []), r]);
          console.log(
            `${name} ${route} round ${round + 1}/${rounds}: ${fmt(r.survived)} bytes/request survived, ` +
              `${fmt(r.promoted)} promoted, ${r.scavenges} scavenges`,
          );
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

const of = (impl: ImplName, route: Route, pick: (r: Round) => number) =>
  (results.get(key(impl, route)) ?? []).map(pick);
const spread = (xs: number[]) => `${fmt(median(xs))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
const rows = impls.flatMap((impl) =>
  (Object.keys(ROUTES) as Route[]).map((route) => {
    const bare = bareOf(impl);
    const survived = of(impl, route, (r) => r.survived);
    const above =
      impls.includes(bare) && bare !== impl ? fmt(median(survived) - median(of(bare, route, (r) => r.survived))) : '—';
    return [
      IMPLS[impl].label,
      route,
      spread(survived),
      above,
      spread(of(impl, route, (r) => r.promoted)),
      spread(of(impl, route, (r) => r.scavenges)),
    ];
  }),
);
const report = [
  '## Bytes per session request that outlive a scavenge',
  '',
  `\`npx tsx bench/session-survival.ts --impls ${impls.join(',')} --requests ${requests} --warmup ${warmup} ` +
    `--rounds ${rounds} --connections ${connections}\`, node ${process.version}, load average ${fmt(load0, 2)} → ` +
    `${fmt(loadavg()[0] as number, 2)}. Median (min–max) over ${rounds} rounds of ${requests} requests, each after ` +
    `${warmup} warm-up requests. "Survived": bytes the scavenges copied within the young generation, per request; ` +
    '"promoted": bytes they moved to the old generation, garbage there until the next full collection; ' +
    '"above bare": the median minus that of the bare server of the same framework.',
  '',
  table(['server', 'route', 'survived / request', 'above bare', 'promoted / request', 'scavenges'], rows),
  '',
].join('\n');
console.log(`\n${report}`);
await writeFile(join(ROOT, 'bench/results/session-survival.md'), report);
