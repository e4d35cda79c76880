/**
 * Scenario 3 — fan-out: one publisher, one room, thousands of WebSocket clients.
 * shoal (publisher → Redis bus → 2 gateways) against Socket.IO with its Redis adapter
 * (publisher = a third Socket.IO server emitting through the adapter → 2 servers) and
 * a raw `ws` broadcast in one process (the ceiling: no bus, no protocol). The clients
 * are the same minimal WebSocket client (bench/lib/lean-websocket.ts) in 4 separate
 * processes for every system, each counting the payloads it receives and their
 * publish→deliver latency (timestamp in the payload).
 * (a) saturation: publish as fast as the system delivers (flow-controlled: at most a
 * fixed number of messages per socket in flight) and count deliveries per second;
 * (b) fixed offered load: 2,000 sockets × 25 and × 50 messages/s → latency percentiles.
 *
 * `tsx bench/fanout.ts [--quick] [--profile] [--tsx]`
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { processCpuMs, redisCounters } from './lib/cpu.js';
import { type ProfileSummary, profileMarkdown, summarizeProfile } from './lib/cpuprofile.js';
import type { LatencyStats } from './lib/histogram.js';
import { requireOpenFiles } from './lib/limits.js';
import type { BenchOptions } from './lib/options.js';
import { benchRedis } from './lib/private-redis.js';
import { type RealtimeSystem, SYSTEM_LABELS, type SystemName, startSystem } from './lib/realtime-systems.js';
import { newRunId } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { isMain, main, type Scenario } from './lib/scenario.js';
import { createSessions } from './lib/sessions.js';
import { Fleet } from './lib/ws-fleet.js';

const ALL_SYSTEMS: SystemName[] = ['shoal', 'socketio', 'ws'];
/** BENCH_SYSTEMS=shoal (comma-separated) runs a subset, e.g. to profile one system. */
function systemsFromEnv(env: NodeJS.ProcessEnv): SystemName[] {
  const wanted = env.BENCH_SYSTEMS?.split(',').map((s) => s.trim()) ?? [];
  const unknown = wanted.filter((s) => !ALL_SYSTEMS.includes(s as SystemName));
  if (unknown.length > 0)
    throw new Error(`BENCH_SYSTEMS: unknown ${unknown.join(', ')}; known: ${ALL_SYSTEMS.join(', ')}`);
  return wanted.length > 0 ? (wanted as SystemName[]) : ALL_SYSTEMS;
}
const CLIENT_PROCESSES = 4;
/** Messages per socket allowed in flight during saturation: enough to keep every stage busy. */
const WINDOW_PER_SOCKET = 30;

interface Sizes {
  sockets: number[];
  /** Messages per second into the room for the fixed-load runs (on the first socket count). */
  rates: number[];
  warmupS: number;
  measureS: number;
}

const FULL: Sizes = { sockets: [2000, 5000], rates: [25, 50], warmupS: 0.5, measureS: 2 };
const QUICK: Sizes = { sockets: [20, 40], rates: [25, 50], warmupS: 0.2, measureS: 0.3 };

/** CPU used during a measured window, per 1,000 deliveries (µs). */
export interface CpuPer1k {
  servers: number;
  redis: number | null;
  clients: number;
  /** The benchmark process itself, which is also the publisher. */
  publisher: number;
}

export interface SaturationRow {
  system: SystemName;
  sockets: number;
  deliveredPerSec: number;
  publishedPerSec: number;
  latency: LatencyStats;
  cpu: CpuPer1k;
  /** Expected minus received after the run drained (must be 0). */
  lost: number;
}

export interface FixedRow {
  system: SystemName;
  sockets: number;
  rate: number;
  offeredPerSec: number;
  deliveredPerSec: number;
  latency: LatencyStats;
  cpu: CpuPer1k;
  lost: number;
}

export interface Target {
  name: string;
  value: number;
  goal: string;
  /** null: shown for context, no goal. */
  met: boolean | null;
}

export interface FanoutData {
  sizes: Sizes;
  clientProcesses: number;
  privateRedis: boolean;
  shoalRuntime: 'compiled' | 'tsx';
  saturation: SaturationRow[];
  fixed: FixedRow[];
  targets: Target[];
  profile?: ProfileSummary;
}

interface Counters {
  at: number;
  delivered: number;
  published: number;
  servers: number;
  clients: number;
  redis: number | null;
  self: number;
}

function cpuOf(pids: number[]): number {
  let ms = 0;
  for (const pid of pids) ms += processCpuMs(pid) ?? 0;
  return ms;
}

async function counters(sys: RealtimeSystem, fleet: Fleet, redis: Redis | null): Promise<Counters> {
  const self = process.cpuUsage();
  return {
    at: performance.now(),
    delivered: fleet.delivered,
    published: sys.published,
    servers: cpuOf(sys.servers.map((s) => s.pid)),
    clients: cpuOf(fleet.pids),
    redis: redis ? (await redisCounters(redis)).cpuMs : null,
    self: (self.user + self.system) / 1000,
  };
}

function cpuPer1k(a: Counters, b: Counters): CpuPer1k {
  const k = (b.delivered - a.delivered) / 1000;
  const per = (ms: number) => (k > 0 ? (ms * 1000) / k : Number.NaN);
  return {
    servers: per(b.servers - a.servers),
    redis: a.redis === null || b.redis === null ? null : per(b.redis - a.redis),
    clients: per(b.clients - a.clients),
    publisher: per(b.self - a.self),
  };
}

/** Waits for every delivery owed since `from`; resolves to how many are missing. */
async function settle(sys: RealtimeSystem, fleet: Fleet, sockets: number, from: Counters): Promise<number> {
  const expected = from.delivered + (sys.published - from.published) * sockets;
  const got = await fleet.drain(expected, 10_000);
  return Math.max(0, expected - got);
}

async function saturate(
  sys: RealtimeSystem,
  fleet: Fleet,
  sockets: number,
  sizes: Sizes,
  redis: Redis | null,
): Promise<SaturationRow> {
  const start = await counters(sys, fleet, redis);
  const warmEnd = Date.now() + sizes.warmupS * 1000;
  const end = warmEnd + sizes.measureS * 1000;
  let measured: Counters | undefined;
  // Bounded: the loop ends at `end` whatever happens; each pass publishes or waits.
  while (Date.now() < end) {
    if (!measured && Date.now() >= warmEnd) {
      measured = await counters(sys, fleet, redis);
      await fleet.resetLatency();
    }
    const inFlight = sys.published * sockets - fleet.delivered - (start.published * sockets - start.delivered);
    if (inFlight < WINDOW_PER_SOCKET * sockets) await sys.publish(Math.max(1, Math.floor(WINDOW_PER_SOCKET / 6)));
    else await fleet.progress(20);
  }
  const from = measured ?? start;
  const to = await counters(sys, fleet, redis);
  const seconds = (to.at - from.at) / 1000;
  const lost = await settle(sys, fleet, sockets, start);
  const snap = await fleet.snapshot();
  return {
    system: sys.name,
    sockets,
    deliveredPerSec: (to.delivered - from.delivered) / seconds,
    publishedPerSec: (to.published - from.published) / seconds,
    latency: snap.histogram.stats(),
    cpu: cpuPer1k(from, to),
    lost,
  };
}

async function offered(
  sys: RealtimeSystem,
  fleet: Fleet,
  sockets: number,
  rate: number,
  sizes: Sizes,
  redis: Redis | null,
): Promise<FixedRow> {
  const start = await counters(sys, fleet, redis);
  const t0 = Date.now();
  const warmEnd = t0 + sizes.warmupS * 1000;
  const end = warmEnd + sizes.measureS * 1000;
  let sent = 0;
  let measured: Counters | undefined;
  while (Date.now() < end) {
    const now = Date.now();
    if (!measured && now >= warmEnd) {
      measured = await counters(sys, fleet, redis);
      void fleet.resetLatency();
    }
    const due = Math.floor(((now - t0) / 1000) * rate) - sent;
    if (due > 0) {
      sent += due;
      await sys.publish(due);
    }
    await sleep(2);
  }
  const to = await counters(sys, fleet, redis);
  const lost = await settle(sys, fleet, sockets, start);
  const snap = await fleet.snapshot();
  const from = measured ?? start;
  const seconds = (to.at - from.at) / 1000;
  return {
    system: sys.name,
    sockets,
    rate,
    offeredPerSec: rate * sockets,
    deliveredPerSec: (to.delivered - from.delivered) / seconds,
    latency: snap.histogram.stats(),
    cpu: cpuPer1k(from, to),
    lost,
  };
}

async function run(options: BenchOptions, log: (line: string) => void) {
  const sizes = options.quick ? QUICK : FULL;
  const maxSockets = Math.max(...sizes.sockets);
  requireOpenFiles(maxSockets);
  const runId = newRunId();
  const room = `room:${runId}`;
  const redis = await benchRedis(options.redisUrl);
  const redisClient = redis.private ? new Redis(redis.url, { maxRetriesPerRequest: 1 }) : null;
  const profileDir = options.profile ? await mkdtemp(join(tmpdir(), `${runId}-profile-`)) : undefined;
  const problems: string[] = [];
  const data: FanoutData = {
    sizes,
    clientProcesses: CLIENT_PROCESSES,
    privateRedis: redis.private,
    shoalRuntime: options.tsx ? 'tsx' : 'compiled',
    saturation: [],
    fixed: [],
    targets: [],
  };
  const batch = await createSessions(redis.url, maxSockets, { userPrefix: `${runId}-u` });
  log(`${maxSockets} sessions written to ${redis.private ? 'a private' : 'the shared'} Redis`);
  const fleet = await Fleet.start(CLIENT_PROCESSES);
  try {
    for (const name of systemsFromEnv(process.env)) {
      const sys = await startSystem({
        name,
        servers: 2,
        redisUrl: redis.url,
        room,
        runId,
        sessions: batch.sessions,
        tsx: options.tsx,
        nodeFlags: (n) => (n === 'shoal' && profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
      });
      try {
        let connected = 0;
        for (const [step, sockets] of sizes.sockets.entries()) {
          const targets = Array.from({ length: sockets - connected }, (_, k) => sys.target(connected + k));
          const t0 = performance.now();
          const opened = await fleet.open(sys.protocol, room, targets);
          connected += opened.ok;
          log(`${name}: ${connected} sockets in the room (${fmt(performance.now() - t0)} ms to add ${opened.ok})`);
          if (opened.failed > 0) {
            problems.push(`${name}: ${opened.failed} of ${targets.length} sockets failed: ${opened.errors.join('; ')}`);
            break;
          }
          const sat = await saturate(sys, fleet, connected, sizes, redisClient);
          data.saturation.push(sat);
          log(
            `${name} ${connected} sockets, saturation: ${fmt(sat.deliveredPerSec)} deliveries/s ` +
              `(${fmt(sat.publishedPerSec)} msgs/s), server CPU ${fmt(sat.cpu.servers, 1)} µs per 1k`,
          );
          if (sat.lost > 0)
            problems.push(`${name} ${connected} sockets: ${sat.lost} deliveries missing after saturation`);
          if (step !== 0) continue;
          for (const rate of sizes.rates) {
            const row = await offered(sys, fleet, connected, rate, sizes, redisClient);
            data.fixed.push(row);
            log(
              `${name} ${connected} sockets × ${rate}/s: p50 ${fmt(row.latency.p50Ms, 2)} ms, ` +
                `p99 ${fmt(row.latency.p99Ms, 2)} ms, ${fmt(row.deliveredPerSec)} deliveries/s`,
            );
            if (row.lost > 0) problems.push(`${name} ${connected} sockets × ${rate}/s: ${row.lost} deliveries missing`);
          }
        }
        const snap = await fleet.snapshot();
        if (snap.closedUnexpectedly > 0)
          problems.push(`${name}: ${snap.closedUnexpectedly} sockets were closed by the server during the run`);
      } finally {
        await fleet.drop();
        await sys.stop();
      }
    }
  } finally {
    await fleet.close();
    redisClient?.disconnect();
    if (redis.private) await batch.store.close();
    else await batch.destroy();
    redis.stop();
  }
  if (profileDir) {
    data.profile = await summarizeProfile(profileDir);
    await rm(profileDir, { recursive: true, force: true });
  }
  data.targets = targets(data);
  return { data, markdown: render(data), problems };
}

function targets(d: FanoutData): Target[] {
  const out: Target[] = [];
  for (const sockets of d.sizes.sockets) {
    const row = (s: SystemName) => d.saturation.find((r) => r.system === s && r.sockets === sockets);
    const sat = (s: SystemName) => row(s)?.deliveredPerSec;
    const shoal = sat('shoal');
    const ws = sat('ws');
    const sio = sat('socketio');
    if (shoal === undefined) continue;
    const shoalCpu = row('shoal')?.cpu.servers;
    const wsCpu = row('ws')?.cpu.servers;
    if (shoalCpu !== undefined && wsCpu !== undefined) {
      out.push({
        name: `server CPU per delivery at ${sockets} sockets, raw ws / shoal`,
        value: wsCpu / shoalCpu,
        goal: '(context)',
        met: null,
      });
    }
    if (ws !== undefined) {
      const v = shoal / ws;
      out.push({ name: `saturation at ${sockets} sockets, shoal / raw ws`, value: v, goal: '≥ 0.90×', met: v >= 0.9 });
    }
    if (sio !== undefined) {
      const v = shoal / sio;
      out.push({ name: `saturation at ${sockets} sockets, shoal / Socket.IO`, value: v, goal: '> 1.00×', met: v > 1 });
    }
  }
  const top = d.fixed.filter((r) => r.system === 'shoal').sort((a, b) => b.offeredPerSec - a.offeredPerSec)[0];
  if (top) {
    out.push({
      name: `shoal p99 publish→deliver at ${fmt(top.offeredPerSec)} deliveries/s offered (ms)`,
      value: top.latency.p99Ms,
      goal: '≤ 20 ms',
      met: top.latency.p99Ms <= 20,
    });
  }
  return out;
}

function render(d: FanoutData): string {
  const s = d.sizes;
  const sat = d.saturation.map((r) => [
    SYSTEM_LABELS[r.system],
    fmt(r.sockets),
    fmt(r.deliveredPerSec),
    fmt(r.publishedPerSec),
    fmt(r.cpu.servers, 1),
    r.cpu.redis === null ? 'n/a' : fmt(r.cpu.redis, 1),
    fmt(r.cpu.clients, 1),
    fmt(r.latency.p50Ms, 1),
    fmt(r.latency.p99Ms, 1),
  ]);
  const fixed = d.fixed.map((r) => [
    SYSTEM_LABELS[r.system],
    `${fmt(r.sockets)} × ${r.rate}/s = ${fmt(r.offeredPerSec)}/s`,
    fmt(r.deliveredPerSec),
    fmt(r.latency.p50Ms, 2),
    fmt(r.latency.p90Ms, 2),
    fmt(r.latency.p99Ms, 2),
    fmt(r.latency.maxMs, 1),
    fmt(r.cpu.servers, 1),
    fmt(r.cpu.clients, 1),
    fmt(r.lost),
  ]);
  const goals = d.targets.map((t) => [
    t.name,
    `${fmt(t.value, 2)}`,
    t.goal,
    t.met === null ? '' : t.met ? 'met' : '**missed**',
  ]);
  const parts = [
    `One room, every client in it; payload \`{"id":n,"t":<publish time>}\`. Clients are one minimal WebSocket client ` +
      '(RFC 6455 on node:net, bench/lib/lean-websocket.ts: a fan-out client does little more than read a frame, and a ' +
      `heavier one would take the CPU the servers need) in ${d.clientProcesses} separate processes for every system (same ` +
      'client cost everywhere), which count payloads and record publish→deliver latency against the same machine ' +
      'clock. shoal: the benchmark process publishes with ' +
      '`createPublisher(bus).to(room).send()` over the Redis bus; 2 gateway processes (' +
      `${d.shoalRuntime === 'tsx' ? 'TypeScript through tsx' : 'compiled JavaScript'}) each hold half the sockets, every socket ` +
      'a signed-in session (session and user channels joined too). Socket.IO 4 with @socket.io/redis-adapter, websocket ' +
      'transport only: the benchmark process is a third Socket.IO server that emits to the room through the adapter; 2 ' +
      'servers hold the sockets. Raw ws (the ceiling): one process holding every socket, no session, no bus, no ' +
      "protocol, broadcasting each frame a control socket sends with the same write path as shoal's gateway (each frame " +
      "built once, a tick's frames joined once and written to each socket in one write at the next tick). " +
      `Redis: ${d.privateRedis ? 'a private redis-server for this run' : 'the shared one (its CPU includes other clients)'}. ` +
      'Everything runs on one 2-core machine: the client processes compete with the servers for CPU, so CPU per 1,000 ' +
      'deliveries is the number that carries over to a bigger machine.',
    '',
    `**Saturation** — publish as fast as the system delivers, with at most ${WINDOW_PER_SOCKET} messages per socket in flight; ` +
      `${s.warmupS} s warm-up, ${s.measureS} s measured. Latency here is queueing under overload, shown for completeness.`,
    '',
    table(
      [
        'system',
        'sockets',
        'deliveries/s',
        'publishes/s',
        'server CPU µs/1k',
        'Redis CPU µs/1k',
        'client CPU µs/1k',
        'p50 ms',
        'p99 ms',
      ],
      sat,
    ),
    '',
    `**Fixed offered load** — a steady publish rate for ${s.warmupS} s warm-up + ${s.measureS} s measured.`,
    '',
    table(
      [
        'system',
        'offered',
        'delivered/s',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        'server CPU µs/1k',
        'client CPU µs/1k',
        'lost',
      ],
      fixed,
    ),
    '',
    table(['target', 'value', 'goal', ''], goals),
  ];
  if (d.profile) parts.push('', profileMarkdown(d.profile));
  return parts.join('\n');
}

export const fanout: Scenario<FanoutData> = {
  name: 'fanout',
  title: 'Scenario 3 — fan-out to one room (shoal vs Socket.IO + Redis adapter vs raw ws)',
  run,
};

if (isMain(import.meta.url)) await main([fanout]);
