/**
 * Scenario 1 — session HTTP throughput on Redis: the shoal probe, the same routes on
 * express-session + connect-redis, and the same routes with no session at all, each
 * loaded by autocannon from a separate process on a read route (GET /session of a
 * logged-in browser) and a one-write route (POST /set/k with a body). Twice: saturating
 * load on loopback Redis (CPU-bound), and a few connections to a Redis a few ms away
 * (latency-bound, through bench/lib/delay-proxy.ts). `--only session-http` runs the first.
 * Then the same saturating load on Fastify (against @fastify/session), and on plain node:http
 * and Hono, where shoal is measured against the bare server of the same framework alone.
 *
 * `tsx bench/session-http.ts [--quick] [--duration s] [--warmup s] [--connections n] [--rounds n] [--profile] [--tsx]`
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { implScript } from './lib/build.js';
import { json, mapLimit, RoundRobinBrowser } from './lib/client.js';
import { processCpuMs, redisCounters } from './lib/cpu.js';
import { type ProfileSummary, profileMarkdown, summarizeProfile } from './lib/cpuprofile.js';
import { cpuPlan } from './lib/cpus.js';
import { IMPLS, type Impl, type ImplName, implSpec } from './lib/impls.js';
import { type LoadResult, type LoadSpec, measure } from './lib/measure.js';
import { type BenchNode, owe, startDelayProxy, startNode } from './lib/nodes.js';
import type { BenchOptions } from './lib/options.js';
import { benchRedis } from './lib/private-redis.js';
import { cleanupRun, medianPingMs, newRunId, redisUnavailable } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { isMain, main, type Scenario } from './lib/scenario.js';

const ROUTES = {
  read: { label: 'read: GET /session', method: 'GET', path: '/session' },
  write: { label: 'write: POST /set/k', method: 'POST', path: '/set/k' },
} as const;
type RouteName = keyof typeof ROUTES;

/**
 * What the writes send: a ~64-byte string, different on every request (the load generator
 * appends a counter). A constant value would let express-session see an unmodified
 * session and skip its write (touch only): it would not be measuring a write at all.
 */
const WRITE_PREFIX = `${'v'.repeat(56)}-`;
const SEED = `${WRITE_PREFIX}seed`;

export interface Ratio {
  name: string;
  /** Median over rounds of the ratio within each round (runs of one round ran back to back). */
  value: number;
  perRound: number[];
  target: number;
  met: boolean;
}

/** What one request cost, from counters read just before and after a measured run. */
export interface Costs {
  /** CPU time of the server process per request (user + system), µs; null off Linux. */
  serverCpuUs: number | null;
  /** CPU time of the delay proxy per request, µs (latency-bound variant only): it shares the machine. */
  proxyCpuUs?: number | null;
  /** Redis CPU per request, µs. On a shared Redis, other clients' work lands here too. */
  redisCpuUs: number;
  /** Commands Redis executed per request, those run inside Lua scripts (and other clients') included. */
  redisCommands: number;
}

export type Measured = LoadResult & { costs: Costs };

/** One load level: how many requests were in flight, each implementation's median run per route, the ratios. */
export interface Level {
  connections: number;
  /** Median run (by req/s) per implementation and route. */
  results: Partial<Record<ImplName, Record<RouteName, Measured>>>;
  ratios: Ratio[];
  /** Session-layer server CPU above the bare server, per route and implementation, over rounds. */
  layer: LayerCost[];
}

export interface LayerCost {
  route: RouteName;
  impl: ImplName;
  /** Median over rounds of (server CPU µs/request − the bare server's in the same round). */
  medianUs: number;
  minUs: number;
  maxUs: number;
  perRound: number[];
}

export interface SessionHttpData {
  /** One-way delay the proxy adds between the servers and Redis, ms (0: no proxy, straight to loopback). */
  proxyDelayMs: number;
  /** Median PING round trip from the servers' side (through the proxy when there is one), ms. */
  measuredRttMs: number;
  /** The implementations compared (bare Express only where Redis is not the point). */
  impls: ImplName[];
  durationS: number;
  warmupS: number;
  rounds: number;
  /** How the shoal probe ran: compiled JavaScript (default) or TypeScript through tsx. */
  shoalRuntime: 'compiled' | 'tsx';
  /** Which cores the processes ran on (bench/lib/cpus.ts). */
  cpus: string;
  /** A Redis server of the run's own (pinned with the load generator), or the shared one. */
  redis: 'private' | 'shared';
  levels: Level[];
  /** Every measured run, in the order they ran. */
  runs: Array<{ impl: ImplName; route: RouteName; connections: number; round: number; result: Measured }>;
  profile?: ProfileSummary;
  /** What each server sends Redis per request, in words. */
  roundTrips: string;
  /** 1-minute load average when the scenario started and when it ended. */
  loadAverage?: [number, number];
}

/** Logs `connections` browsers in (one session each) and gives each session one attribute. */
async function loginBrowsers(impl: Impl, node: BenchNode, runId: string, count: number) {
  return mapLimit(
    Array.from({ length: count }, (_, i) => i),
    8,
    async (i) => {
      const browser = new RoundRobinBrowser([node.url]);
      await json(await browser.fetch(`/login?user=${runId}-u${i}`, { method: 'POST' }), `${impl.name} login`);
      await json(
        await browser.fetch('/set/k', { method: 'POST', body: SEED, headers: { 'content-type': 'text/plain' } }),
        `${impl.name} seed`,
      );
      if (impl.stateful && browser.cookies.size === 0) throw new Error(`${impl.name} login set no cookie`);
      return browser.cookieHeader;
    },
  );
}

/**
 * Proves the server reads the session it is loaded with (a bench of empty sessions would
 * flatter) and, after the load, that the writes landed: `k` no longer holds the seed.
 */
async function checkSession(
  impl: Impl,
  node: BenchNode,
  cookie: string,
  user: string,
  afterLoad: boolean,
): Promise<string | undefined> {
  if (!impl.stateful) return undefined;
  const res = await fetch(`${node.url}/session`, { headers: { cookie } });
  const body = await json<{ attributes: Record<string, unknown> }>(res, `${impl.name} session check`);
  const k = String(body.attributes.k);
  const kOk = afterLoad ? k.startsWith(WRITE_PREFIX) && k !== SEED : k === SEED;
  if (body.attributes.userId !== user || !kOk)
    return `${impl.name}: GET /session ${afterLoad ? 'after the load ' : ''}did not return the expected session (got ${JSON.stringify(body.attributes).slice(0, 200)})`;
  return undefined;
}

type Run = SessionHttpData['runs'][number];

/**
 * Ratios are taken inside each round, then the median over rounds: on a shared machine the
 * load swings between rounds, and dividing medians taken in different rounds would mix them.
 * Ratios against the bare server only where it ran.
 */
function computeRatios(runs: Run[], rounds: number, variant: Variant): Ratio[] {
  const { targets } = variant;
  const impls = [...new Set(runs.map((x) => x.impl))];
  const { shoal, peer, bare } = variant.roles;
  const pick = (impl: ImplName, route: RouteName, round: number) =>
    runs.find((x) => x.impl === impl && x.route === route && x.round === round)?.result;
  const rps = (impl: ImplName, route: RouteName, round: number) =>
    pick(impl, route, round)?.requestsPerSec ?? Number.NaN;
  const ratio = (name: string, of: (round: number) => number, target = 0): Ratio => {
    const perRound = Array.from({ length: rounds }, (_, r) => of(r));
    const value = medianOf(perRound);
    return { name, value, perRound, target, met: value >= target };
  };
  const withBare = bare !== undefined && impls.includes(bare);
  const out: Ratio[] = [];
  if (peer)
    out.push(
      ratio(`${shoal} / ${peer}, write route`, (r) => rps(shoal, 'write', r) / rps(peer, 'write', r), targets.write),
    );
  if (withBare)
    out.push(
      ratio(`${shoal} / ${bare}, read route`, (r) => rps(shoal, 'read', r) / rps(bare, 'read', r), targets.read),
    );
  if (peer)
    out.push(
      ratio(
        `${shoal} / ${peer}, read route`,
        (r) => rps(shoal, 'read', r) / rps(peer, 'read', r),
        targets.readVsPeer ?? 0,
      ),
    );
  // The session layer's own CPU: what each server spends per request beyond the bare one, same round.
  // Without a peer there is nothing to divide it by: layerCosts() reports it in µs.
  if (withBare && peer)
    for (const route of Object.keys(ROUTES) as RouteName[])
      out.push(
        ratio(
          `session-layer server CPU above bare, ${peer} / ${shoal}, ${route} route`,
          (r) => cpuAbove(runs, peer, bare, route, r) / cpuAbove(runs, shoal, bare, route, r),
          targets.layerCpu,
        ),
      );
  if (withBare)
    out.push(ratio(`${shoal} / ${bare}, write route`, (r) => rps(shoal, 'write', r) / rps(bare, 'write', r)));
  // shoal in the peer's own app (no probe extras): the session layers compared alone.
  if (peer && impls.includes('express-shoal') && impls.includes(peer)) {
    out.push(
      ratio(
        'express-shoal / express-session, write route',
        (r) => rps('express-shoal', 'write', r) / rps(peer, 'write', r),
      ),
      ratio(
        'express-shoal / express-session, read route',
        (r) => rps('express-shoal', 'read', r) / rps(peer, 'read', r),
      ),
    );
    if (bare && impls.includes(bare))
      out.push(
        ratio(`express-shoal / ${bare}, read route`, (r) => rps('express-shoal', 'read', r) / rps(bare, 'read', r)),
      );
    if (bare && impls.includes(bare))
      for (const route of Object.keys(ROUTES) as RouteName[])
        out.push(
          ratio(
            `session-layer server CPU above bare, ${peer} / express-shoal, ${route} route`,
            (r) => cpuAbove(runs, peer, bare, route, r) / cpuAbove(runs, 'express-shoal', bare, route, r),
          ),
        );
  }
  // --- express-session drop-in row (bench/peers/drop-in-app.ts): its throughput against express-session's.
  if (impls.includes('drop-in')) {
    out.push(
      ratio(
        'drop-in / express-session, write route',
        (r) => rps('drop-in', 'write', r) / rps('express-session', 'write', r),
      ),
      ratio(
        'drop-in / express-session, read route',
        (r) => rps('drop-in', 'read', r) / rps('express-session', 'read', r),
      ),
    );
  }
  // --- end of the drop-in row.
  // The floor (bench/peers/express-floor-app.mjs): the cookie and the one Redis round trip, nothing
  // else. What it reaches is the most any session layer on this Redis client can reach.
  if (impls.includes('express-floor')) {
    if (withBare)
      out.push(
        ratio(`express-floor / ${bare}, read route`, (r) => rps('express-floor', 'read', r) / rps(bare, 'read', r)),
      );
    if (peer)
      out.push(
        ratio(`express-floor / ${peer}, write route`, (r) => rps('express-floor', 'write', r) / rps(peer, 'write', r)),
      );
  }
  return out;
}

/** Server CPU per request of `impl` minus the bare server's, in the same round, µs. */
function cpuAbove(runs: Run[], impl: ImplName, bare: ImplName, route: RouteName, round: number): number {
  const cpu = (name: ImplName) =>
    runs.find((x) => x.impl === name && x.route === route && x.round === round)?.result.costs.serverCpuUs ?? Number.NaN;
  return cpu(impl) - cpu(bare);
}

function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  return n % 2 ? (sorted[(n - 1) / 2] as number) : ((sorted[n / 2 - 1] as number) + (sorted[n / 2] as number)) / 2;
}

/** Each stateful implementation's session-layer CPU above bare, per route: median and range over rounds. */
function layerCosts(runs: Run[], rounds: number, variant: Variant): LayerCost[] {
  const bare = variant.roles.bare;
  const impls = [...new Set(runs.map((x) => x.impl))];
  if (!bare || !impls.includes(bare)) return [];
  const out: LayerCost[] = [];
  for (const route of Object.keys(ROUTES) as RouteName[]) {
    for (const impl of impls) {
      if (impl === bare) continue;
      const perRound = Array.from({ length: rounds }, (_, r) => cpuAbove(runs, impl, bare, route, r));
      const finite = perRound.filter(Number.isFinite);
      out.push({
        route,
        impl,
        medianUs: medianOf(finite),
        minUs: Math.min(...finite),
        maxUs: Math.max(...finite),
        perRound,
      });
    }
  }
  return out;
}

function median(runs: Measured[]): Measured {
  const sorted = [...runs].sort((a, b) => a.requestsPerSec - b.requestsPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)] as Measured;
}

/** Warm-up (unmeasured), then a measured run bracketed by CPU and Redis counters. */
async function measureWithCosts(
  spec: LoadSpec,
  warmupS: number,
  pid: number,
  redis: Redis,
  launcher: string[],
  proxyPid?: number,
): Promise<Measured> {
  if (warmupS > 0) await measure({ ...spec, durationS: warmupS }, launcher);
  const proxy0 = proxyPid === undefined ? undefined : processCpuMs(proxyPid);
  const cpu0 = processCpuMs(pid);
  const redis0 = await redisCounters(redis);
  const result = await measure(spec, launcher);
  const cpu1 = processCpuMs(pid);
  const proxy1 = proxyPid === undefined ? undefined : processCpuMs(proxyPid);
  const redis1 = await redisCounters(redis);
  const per = (delta: number) => (result.requests > 0 ? delta / result.requests : Number.NaN);
  return {
    ...result,
    costs: {
      serverCpuUs: cpu0 === undefined || cpu1 === undefined ? null : per((cpu1 - cpu0) * 1000),
      ...(proxyPid === undefined
        ? {}
        : { proxyCpuUs: proxy0 === undefined || proxy1 === undefined ? null : per((proxy1 - proxy0) * 1000) }),
      redisCpuUs: per((redis1.cpuMs - redis0.cpuMs) * 1000),
      // The closing INFO call itself is one command.
      redisCommands: per(redis1.commands - redis0.commands - 1),
    },
  };
}

/** The same scenario in two network settings. */
interface Variant {
  name: string;
  title: string;
  /** Delay added each way between servers and Redis, ms (bench/lib/delay-proxy.ts); 0 = no proxy. */
  delayMs: number;
  /** Requests in flight (autocannon connections), one load level each. */
  levels(options: BenchOptions): number[];
  impls: ImplName[];
  /**
   * Who is compared: shoal's server, the established peer (none: shoal against its bare server
   * alone), the bare server (none: no bare row).
   */
  roles: { shoal: ImplName; peer?: ImplName; bare?: ImplName };
  /** Redis round trips per request of each server, in words, for the report. */
  roundTrips: string;
  /**
   * Minimum ratios, 0 = informational: shoal/peer req/s on the write (and read) route, shoal/bare
   * req/s on the read route, and peer/shoal session-layer CPU above bare on each route. Without a
   * peer only `read` applies.
   */
  targets: { write: number; read: number; readVsPeer?: number; layerCpu: number };
}

async function run(variant: Variant, options: BenchOptions, log: (line: string) => void) {
  const cpus = cpuPlan(options.pin);
  // Pinned, Redis runs on the others' cores too: a private server, so the shared one's core does not matter.
  const privateRedis = cpus.pinned ? await benchRedis(options.redisUrl, cpus.others) : undefined;
  const redisUrl = privateRedis?.url ?? options.redisUrl;
  const down = await redisUnavailable(redisUrl);
  if (down) throw new Error(down);
  const runId = newRunId();
  const paid = owe(() => cleanupRun(redisUrl, runId));
  const levels = variant.levels(options);
  // BENCH_IMPLS=shoal,bare: a quicker loop over some of the servers (ratios with a missing one read NaN).
  const only = process.env.BENCH_IMPLS?.split(',');
  const impls = only ? variant.impls.filter((name) => only.includes(name)) : variant.impls;
  const proxy = variant.delayMs > 0 ? await startDelayProxy(redisUrl, variant.delayMs, cpus.others) : undefined;
  const serverRedisUrl = proxy?.url ?? redisUrl;
  const measuredRttMs = await medianPingMs(serverRedisUrl);
  log(`Redis round trip seen by the servers: ${fmt(measuredRttMs, 2)} ms (median PING)`);
  const profileDir = options.profile ? await mkdtemp(join(tmpdir(), `${runId}-profile-`)) : undefined;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const problems: string[] = [];
  const nodes = new Map<ImplName, BenchNode>();
  const data: SessionHttpData = {
    proxyDelayMs: variant.delayMs,
    measuredRttMs,
    impls,
    durationS: options.durationS,
    warmupS: options.warmupS,
    rounds: options.rounds,
    shoalRuntime: options.tsx ? 'tsx' : 'compiled',
    cpus: cpus.description,
    redis: privateRedis?.private ? 'private' : 'shared',
    levels: [],
    runs: [],
    roundTrips: variant.roundTrips,
  };
  const load0 = loadavg()[0] as number;
  try {
    for (const name of impls) {
      const flags = name === variant.roles.shoal && profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
      const impl = IMPLS[name];
      const script = await implScript(options, impl);
      const spec = implSpec(impl, serverRedisUrl, runId, { nodeFlags: flags, script });
      nodes.set(name, await startNode({ ...spec, launcher: cpus.server }));
    }
    log(`servers up: ${[...nodes].map(([n, node]) => `${n} ${node.url} (pid ${node.pid})`).join(', ')}`);

    const browsers = Math.max(...levels);
    const cookies = new Map<ImplName, string[]>();
    for (const name of impls) {
      const impl = IMPLS[name];
      const node = nodes.get(name) as BenchNode;
      const logged = await loginBrowsers(impl, node, runId, browsers);
      cookies.set(name, impl.stateful ? logged : []);
      const bad = await checkSession(impl, node, logged[0] ?? '', `${runId}-u0`, false);
      if (bad) problems.push(bad);
    }
    log(`${browsers} browsers logged in per implementation`);

    for (const connections of levels) {
      for (let round = 0; round < options.rounds; round++) {
        // The implementations compared on a route run back to back, so a ratio compares runs
        // under the same machine load; who goes first rotates every round.
        const order = impls.map((_, i) => impls[(i + round) % impls.length] as ImplName);
        for (const route of Object.keys(ROUTES) as RouteName[]) {
          for (const name of order) {
            const r = ROUTES[route];
            const node = nodes.get(name) as BenchNode;
            const spec: LoadSpec = {
              url: node.url,
              method: r.method,
              path: r.path,
              cookies: (cookies.get(name) ?? []).slice(0, connections),
              connections,
              durationS: options.durationS,
              ...(r.method === 'POST'
                ? { body: WRITE_PREFIX, varyBody: true, headers: { 'content-type': 'text/plain' } }
                : {}),
            };
            const result = await measureWithCosts(spec, options.warmupS, node.pid, redis, cpus.others, proxy?.pid);
            data.runs.push({ impl: name, route, connections, round, result });
            log(
              `${connections} conn, round ${round + 1}/${options.rounds} ${name} ${route}: ${fmt(result.requestsPerSec)} req/s, ` +
                `p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, ` +
                `server CPU ${fmt(result.costs.serverCpuUs ?? Number.NaN)} µs/req`,
            );
            const failures = result.non2xx + result.errors + result.timeouts;
            if (failures > 0)
              problems.push(
                `${name} ${route} ${connections} conn round ${round + 1}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts (${JSON.stringify(result.statusCodes)})`,
              );
            if (result.requests === 0)
              problems.push(`${name} ${route} ${connections} conn round ${round + 1}: no request completed`);
          }
        }
      }
      const runs = data.runs.filter((x) => x.connections === connections);
      const level: Level = {
        connections,
        results: {},
        ratios: computeRatios(runs, options.rounds, variant),
        layer: layerCosts(runs, options.rounds, variant),
      };
      for (const name of impls) {
        const of = (route: RouteName) =>
          median(runs.filter((x) => x.impl === name && x.route === route).map((x) => x.result));
        level.results[name] = { read: of('read'), write: of('write') };
      }
      data.levels.push(level);
    }

    for (const name of impls) {
      const bad = await checkSession(
        IMPLS[name],
        nodes.get(name) as BenchNode,
        cookies.get(name)?.[0] ?? '',
        `${runId}-u0`,
        true,
      );
      if (bad) problems.push(bad);
    }
  } finally {
    await Promise.all([...nodes.values()].map((n) => n.stop()));
    proxy?.stop();
    redis.disconnect();
    paid();
    await cleanupRun(redisUrl, runId).catch((err: Error) =>
      problems.push(`cleanup of ${runId} failed: ${err.message}`),
    );
    privateRedis?.stop();
  }
  data.loadAverage = [load0, loadavg()[0] as number];
  if (profileDir) {
    data.profile = await summarizeProfile(profileDir);
    await rm(profileDir, { recursive: true, force: true });
  }
  return { data, markdown: render(data), problems };
}

function render(d: SessionHttpData): string {
  const several = d.levels.length > 1;
  const rows: Array<Array<string | number>> = [];
  const ratios: Array<Array<string | number>> = [];
  const layer: Array<Array<string | number>> = [];
  for (const level of d.levels) {
    for (const c of level.layer ?? [])
      layer.push([
        ...(several ? [level.connections] : []),
        ROUTES[c.route].label,
        IMPLS[c.impl].label,
        fmt(c.medianUs),
        `${fmt(c.minUs)} – ${fmt(c.maxUs)}`,
        c.perRound.map((x) => fmt(x)).join(' · '),
      ]);
    for (const route of Object.keys(ROUTES) as RouteName[]) {
      for (const name of d.impls) {
        const r = level.results[name]?.[route];
        if (!r) continue;
        rows.push([
          ...(several ? [level.connections] : []),
          ROUTES[route].label,
          IMPLS[name].label,
          fmt(r.requestsPerSec),
          fmt(r.latencyMs.p50, 1),
          fmt(r.latencyMs.p99, 1),
          fmt(r.latencyMs.avg, 2),
          r.costs.serverCpuUs === null ? 'n/a' : fmt(r.costs.serverCpuUs),
          ...(d.proxyDelayMs > 0 ? [r.costs.proxyCpuUs == null ? 'n/a' : fmt(r.costs.proxyCpuUs)] : []),
        ]);
      }
    }
    for (const r of level.ratios)
      ratios.push([
        several ? `${level.connections} in flight: ${r.name}` : r.name,
        `${fmt(r.value, 2)}×`,
        r.perRound.map((x) => fmt(x, 2)).join(' · '),
        r.target > 0 ? `≥ ${fmt(r.target, 2)}×` : '(info)',
        r.target > 0 ? (r.met ? 'met' : '**missed**') : '',
      ]);
  }
  const connections = d.levels.map((l) => l.connections).join(' and ');
  const parts = [
    `${connections} connections (requests in flight), ${d.durationS} s per run after ${d.warmupS} s warm-up, ${d.rounds} round(s); the table shows each implementation's median run by req/s, ratios are the median of per-round ratios (runs compared on a route ran back to back); ` +
      'one server process each, autocannon in its own process, ' +
      (d.proxyDelayMs > 0 ? remoteText(d) : `Redis on loopback (median PING ${fmt(d.measuredRttMs, 2)} ms). `) +
      `Each connection is one logged-in browser; writes send a ~64-byte text body that differs on every request. ` +
      `shoal runs as ${d.shoalRuntime === 'tsx' ? 'TypeScript through tsx' : 'compiled JavaScript'}. ` +
      `Cores: ${d.cpus}. ` +
      `Server CPU per request comes from /proc around each measured run, and the machine's load average (uptime) ` +
      `was ${d.loadAverage?.map((x) => fmt(x, 2)).join(' → ') ?? 'not recorded'} (start → end). ${d.roundTrips} ` +
      (d.redis === 'private'
        ? 'Redis is a private redis-server of this run; its counters are in the JSON.'
        : 'Redis counters are in the JSON only: the Redis is shared.'),
    '',
    table(
      [
        ...(several ? ['in flight'] : []),
        'route',
        'implementation',
        'req/s',
        'p50 ms',
        'p99 ms',
        'mean ms',
        'server CPU µs/req',
        ...(d.proxyDelayMs > 0 ? ['proxy CPU µs/req'] : []),
      ],
      rows,
    ),
    ...(layer.length
      ? [
          '',
          "Session-layer server CPU: each server's CPU per request minus the bare server's in the same round " +
            '(the cost of the session layer alone, µs/request); median, range and every round:',
          '',
          table(
            [...(several ? ['in flight'] : []), 'route', 'implementation', 'µs/req above bare', 'range', 'per round'],
            layer,
          ),
        ]
      : []),
    '',
    table(['ratio (req/s unless stated)', 'median', 'per round', 'target', ''], ratios),
  ];
  if (d.profile) parts.push('', profileMarkdown(d.profile));
  return parts.join('\n');
}

function remoteText(d: SessionHttpData): string {
  return (
    `Redis behind a TCP proxy process that delays each direction by ${d.proxyDelayMs} ms (a Redis in another zone; ` +
    `this kernel has no netem), measured round trip ${fmt(d.measuredRttMs, 2)} ms (median PING). The proxy runs on the ` +
    'same 2 cores, so its CPU per request is shown too. '
  );
}

function scenario(variant: Variant): Scenario<SessionHttpData> {
  return { name: variant.name, title: variant.title, run: (options, log) => run(variant, options, log) };
}

const EXPRESS_ROUND_TRIPS =
  'Redis round trips per request: shoal read 1 (HGETALL), shoal write 1 (EVALSHA of the commit script); ' +
  'express-session read 2 (GET, then EXPIRE as its touch), write 2 (GET, SET).';

/** Saturating load on loopback Redis: what one server process can do (CPU-bound). */
export const sessionHttp = scenario({
  name: 'session-http',
  title: 'Scenario 1 — session HTTP throughput on Redis (shoal vs express-session + connect-redis vs no session)',
  delayMs: 0,
  levels: (o) => [o.connections],
  // express-shoal: shoal in the express-session peer's own app; drop-in: the express-session drop-in's row;
  // express-floor: the cookie and the same Redis round trip alone, the ceiling for any layer on ioredis.
  impls: ['shoal', 'express-shoal', 'express-session', 'bare', 'drop-in', 'express-floor'],
  roles: { shoal: 'shoal', peer: 'express-session', bare: 'bare' },
  roundTrips: EXPRESS_ROUND_TRIPS,
  // layerCpu 3: shoal's session layer costs at most a third of express-session's.
  targets: { write: 1.5, read: 0.85, layerCpu: 3 },
});

/**
 * Redis a few milliseconds away and a few requests in flight per node: latency-bound, where
 * one round trip per commit (shoal) against a read then a write (express-session) shows.
 * Bare Express never talks to Redis, so it has nothing to show here.
 */
export const sessionHttpRemote = scenario({
  name: 'session-http-remote-redis',
  title: 'Scenario 1b — the same with Redis a few ms away and a lightly loaded node (latency-bound)',
  // Node's timers fire on whole milliseconds: a smaller delay would still be 1 ms each way.
  delayMs: 1,
  levels: (o) => [...new Set([1, Math.max(1, Math.round(o.connections / 10))])],
  impls: ['shoal', 'express-session'],
  roles: { shoal: 'shoal', peer: 'express-session' },
  roundTrips: EXPRESS_ROUND_TRIPS,
  targets: { write: 1.5, read: 0, layerCpu: 0 },
});

/** The same saturating load on Fastify: shoal/fastify against @fastify/session, both over Redis. */
export const sessionHttpFastify = scenario({
  name: 'session-http-fastify',
  title:
    'Scenario 1c — session HTTP throughput on Fastify (shoal/fastify vs @fastify/session + connect-redis vs no session)',
  delayMs: 0,
  levels: (o) => [o.connections],
  impls: ['fastify-shoal', 'fastify-session', 'fastify-bare'],
  roles: { shoal: 'fastify-shoal', peer: 'fastify-session', bare: 'fastify-bare' },
  roundTrips:
    'Redis round trips per request: shoal read 1 (HGETALL), write 1 (EVALSHA); @fastify/session (rolling, its ' +
    'default) read 2 (GET, then SET: every response re-saves a loaded session), write 2 (GET, SET).',
  // Ahead of @fastify/session on both routes.
  targets: { write: 1, readVsPeer: 1, read: 0, layerCpu: 0 },
});

/** shoal's own layer on a framework no session peer is measured on: against its bare server alone. */
const NO_PEER_ROUND_TRIPS =
  'Redis round trips per request: shoal read 1 (HGETALL), write 1 (EVALSHA); the bare server none.';

/** The same saturating load on plain node:http: shoal/node's cost above the bare server. */
export const sessionHttpNode = scenario({
  name: 'session-http-node',
  title: 'Scenario 1d — session HTTP throughput on plain node:http (shoal/node vs no session)',
  delayMs: 0,
  levels: (o) => [o.connections],
  impls: ['node-shoal', 'node-bare'],
  roles: { shoal: 'node-shoal', bare: 'node-bare' },
  roundTrips: NO_PEER_ROUND_TRIPS,
  // No session peer to beat: the ratios to bare and the layer's µs are informational.
  targets: { write: 0, read: 0, layerCpu: 0 },
});

/** The same saturating load on Hono (@hono/node-server): shoal/hono's cost above bare Hono. */
export const sessionHttpHono = scenario({
  name: 'session-http-hono',
  title: 'Scenario 1e — session HTTP throughput on Hono (shoal/hono vs no session)',
  delayMs: 0,
  levels: (o) => [o.connections],
  impls: ['hono-shoal', 'hono-bare'],
  roles: { shoal: 'hono-shoal', bare: 'hono-bare' },
  roundTrips: NO_PEER_ROUND_TRIPS,
  targets: { write: 0, read: 0, layerCpu: 0 },
});

if (isMain(import.meta.url))
  await main([sessionHttp, sessionHttpRemote, sessionHttpFastify, sessionHttpNode, sessionHttpHono]);
