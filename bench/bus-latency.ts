/**
 * Scenario 6 — the embedded SQLite bus across processes: a publisher process and a
 * subscriber process on one database file (how `npm start`'s web nodes reach its
 * gateways with no broker). The subscriber records publish→deliver latency from the
 * timestamp in each payload. Steady rates, then the Redis bus at the same rate for
 * reference.
 *
 * `tsx bench/bus-latency.ts [--quick]`
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PeerCommand, PeerReply } from './lib/bus-peer.js';
import { Histogram, type LatencyStats } from './lib/histogram.js';
import { IpcChild } from './lib/ipc.js';
import type { BenchOptions } from './lib/options.js';
import { benchRedis } from './lib/private-redis.js';
import { newRunId } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { isMain, main, type Scenario } from './lib/scenario.js';

const SCRIPT = 'bench/lib/bus-peer.ts';

export interface BusLatencyRow {
  bus: 'sqlite' | 'redis';
  rate: number;
  published: number;
  received: number;
  outOfOrder: number;
  latency: LatencyStats;
}

export interface BusLatencyData {
  warmupS: number;
  durationS: number;
  pollMs: number;
  rows: BusLatencyRow[];
}

type Peer = IpcChild<PeerCommand, PeerReply>;

async function measure(
  peers: { sub: Peer; pub: Peer },
  bus: BusLatencyRow['bus'],
  url: string,
  rate: number,
  timing: { warmupS: number; durationS: number },
  namespace: string,
): Promise<BusLatencyRow> {
  const { sub, pub } = peers;
  const channel = `bench:${bus}:${rate}`;
  await sub.ask({ cmd: 'open', url, namespace, subscribe: channel }, 'opened', 20_000);
  await pub.ask({ cmd: 'open', url, namespace }, 'opened', 20_000);
  // Warm-up: connections, statements and JIT, unmeasured.
  const warm = await pub.ask({ cmd: 'publish', channel, rate, durationS: timing.warmupS }, 'published', 30_000);
  await settle(sub, warm.count, 5000);
  await sub.ask({ cmd: 'reset' }, 'reset');
  const done = await pub.ask(
    { cmd: 'publish', channel, rate, durationS: timing.durationS },
    'published',
    timing.durationS * 1000 + 30_000,
  );
  const snap = await settle(sub, done.count, 5000);
  const h = new Histogram();
  h.add(snap.histogram);
  return { bus, rate, published: done.count, received: snap.received, outOfOrder: snap.outOfOrder, latency: h.stats() };
}

/** Waits until the subscriber has `count` messages (or `timeoutMs` passed) and returns its snapshot. */
async function settle(sub: Peer, count: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const snap = await sub.ask({ cmd: 'snapshot' }, 'snapshot');
    if (snap.received >= count || Date.now() > deadline) return snap;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function run(options: BenchOptions, log: (line: string) => void) {
  const timing = options.quick ? { warmupS: 0.2, durationS: 0.3 } : { warmupS: 0.5, durationS: 2 };
  const runId = newRunId();
  const dir = await mkdtemp(join(tmpdir(), `${runId}-bus-`));
  const redis = await benchRedis(options.redisUrl);
  const problems: string[] = [];
  const rows: BusLatencyRow[] = [];
  const plan: Array<[BusLatencyRow['bus'], string, number]> = [
    ['sqlite', `sqlite:${join(dir, 'bus.db')}`, 100],
    ['sqlite', `sqlite:${join(dir, 'bus.db')}`, 1000],
    ['redis', redis.url, 1000],
  ];
  const [sub, pub] = await Promise.all([
    IpcChild.start<PeerCommand, PeerReply>(SCRIPT),
    IpcChild.start<PeerCommand, PeerReply>(SCRIPT),
  ]);
  try {
    for (const [bus, url, rate] of plan) {
      const row = await measure({ sub, pub }, bus, url, rate, timing, runId);
      rows.push(row);
      log(
        `${bus} ${rate}/s: p50 ${fmt(row.latency.p50Ms, 2)} ms, p99 ${fmt(row.latency.p99Ms, 2)} ms, ` +
          `${row.received}/${row.published} received`,
      );
      if (row.received !== row.published)
        problems.push(
          `${bus} at ${rate}/s: ${row.published - row.received} of ${row.published} messages not delivered`,
        );
      if (row.outOfOrder > 0) problems.push(`${bus} at ${rate}/s: ${row.outOfOrder} messages out of order`);
    }
  } finally {
    await Promise.all([sub.stop({ cmd: 'close' }), pub.stop({ cmd: 'close' })]);
    redis.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const data: BusLatencyData = { ...timing, pollMs: 3, rows };
  return { data, markdown: render(data), problems };
}

function render(d: BusLatencyData): string {
  return [
    `One publisher process and one subscriber process; ${d.durationS} s at a steady rate after a ${d.warmupS} s warm-up. ` +
      `The SQLite bus shares one database file between processes; subscribers poll it every ${d.pollMs} ms ` +
      '(the default), so about half a poll interval is the floor of its latency. The Redis bus (a private ' +
      'redis-server; Lua publish + sharded pub/sub) is the reference a cluster would use.',
    '',
    table(
      ['bus', 'rate msgs/s', 'delivered', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
      d.rows.map((r) => [
        r.bus,
        fmt(r.rate),
        `${fmt(r.received)} / ${fmt(r.published)}`,
        fmt(r.latency.p50Ms, 2),
        fmt(r.latency.p90Ms, 2),
        fmt(r.latency.p99Ms, 2),
        fmt(r.latency.maxMs, 1),
      ]),
    ),
  ].join('\n');
}

export const busLatency: Scenario<BusLatencyData> = {
  name: 'bus-latency',
  title: 'Scenario 6 — embedded SQLite bus: publish→deliver latency across processes',
  run,
};

if (isMain(import.meta.url)) await main([busLatency]);
