/**
 * Scenario 4 — memory per idle connection: one server process holding 10,000 idle
 * WebSocket clients (each in one room; shoal's each a signed-in session with its session
 * and user channels), against Socket.IO (Redis adapter) and raw `ws`. The server runs
 * with bench/peers/gc-signal.mjs preloaded: before each reading it collects garbage until
 * the heap stops shrinking, so the difference is what the connections keep alive.
 * Per connection = (after − before) / n, the baseline taken after a warm-up batch of
 * connections came and went (code loaded, pools and JIT warm).
 *
 * `tsx bench/memory.ts [--quick] [--tsx]`
 */
import { join } from 'node:path';
import { requireOpenFiles } from './lib/limits.js';
import type { BenchNode } from './lib/nodes.js';
import { ROOT } from './lib/nodes.js';
import type { BenchOptions } from './lib/options.js';
import { benchRedis } from './lib/private-redis.js';
import { type RealtimeSystem, SYSTEM_LABELS, type SystemName, startSystem } from './lib/realtime-systems.js';
import { newRunId } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { isMain, main, type Scenario } from './lib/scenario.js';
import { createSessions } from './lib/sessions.js';
import { Fleet } from './lib/ws-fleet.js';

const SYSTEMS: SystemName[] = ['shoal', 'socketio', 'ws'];
const GC_PRELOAD = join(ROOT, 'bench', 'peers', 'gc-signal.mjs');
const TARGET_KB = 10;

interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface MemoryRow {
  system: SystemName;
  connections: number;
  before: Memory;
  after: Memory;
  /** Bytes per connection. */
  perConnection: { rss: number; heapUsed: number; external: number };
}

export interface MemoryData {
  connections: number;
  warmup: number;
  rows: MemoryRow[];
  targetKb: number;
}

/** Asks the server (SIGUSR2) to collect garbage and report, and waits for report number `n`. */
async function readMemory(node: BenchNode, n: number): Promise<Memory> {
  process.kill(node.pid, 'SIGUSR2');
  const deadline = Date.now() + 15_000;
  const pattern = new RegExp(`BENCH_MEMORY ${n} (\\{.*\\})`);
  for (;;) {
    const m = pattern.exec(node.output());
    if (m) return JSON.parse(m[1] as string) as Memory;
    if (Date.now() > deadline) throw new Error(`${node.name} did not report its memory (report ${n}) within 15 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function measureSystem(
  sys: RealtimeSystem,
  fleets: { warm: Fleet; main: Fleet },
  n: number,
  warmup: number,
  room: string,
  settleMs: number,
): Promise<MemoryRow> {
  const server = sys.servers[0] as BenchNode;
  const w = await fleets.warm.open(
    sys.protocol,
    room,
    Array.from({ length: warmup }, (_, i) => sys.target(n + i)),
  );
  await fleets.warm.drop();
  if (w.failed > 0) throw new Error(`${sys.name}: warm-up connections failed: ${w.errors.join('; ')}`);
  // Let the server notice the closes and drop what they held.
  await new Promise((r) => setTimeout(r, settleMs));
  const before = await readMemory(server, 1);
  try {
    const opened = await fleets.main.open(
      sys.protocol,
      room,
      Array.from({ length: n }, (_, i) => sys.target(i)),
    );
    if (opened.failed > 0)
      throw new Error(`${sys.name}: ${opened.failed} of ${n} connections failed: ${opened.errors.join('; ')}`);
    // Idle for a moment: handshake garbage and one-off buffers are what the GC below removes.
    await new Promise((r) => setTimeout(r, settleMs));
    const after = await readMemory(server, 2);
    return {
      system: sys.name,
      connections: n,
      before,
      after,
      perConnection: {
        rss: (after.rss - before.rss) / n,
        heapUsed: (after.heapUsed - before.heapUsed) / n,
        external: (after.external - before.external) / n,
      },
    };
  } finally {
    await fleets.main.drop();
  }
}

async function run(options: BenchOptions, log: (line: string) => void) {
  const n = options.quick ? 100 : 10_000;
  const warmup = options.quick ? 20 : 200;
  requireOpenFiles(n + warmup);
  const runId = newRunId();
  const room = `room:${runId}`;
  const redis = await benchRedis(options.redisUrl);
  const problems: string[] = [];
  const rows: MemoryRow[] = [];
  const batch = await createSessions(redis.url, n + warmup, { userPrefix: `${runId}-u` });
  log(`${n + warmup} sessions written`);
  const [warm, fleet] = await Promise.all([Fleet.start(1), Fleet.start(4)]);
  try {
    for (const name of SYSTEMS) {
      const sys = await startSystem({
        name,
        servers: 1,
        redisUrl: redis.url,
        room,
        runId,
        sessions: batch.sessions,
        tsx: options.tsx,
        nodeFlags: () => ['--expose-gc', '--import', GC_PRELOAD],
      });
      try {
        const row = await measureSystem(sys, { warm, main: fleet }, n, warmup, room, options.quick ? 200 : 500);
        rows.push(row);
        log(
          `${name}: ${fmt(row.perConnection.rss / 1024, 1)} KB RSS, ` +
            `${fmt(row.perConnection.heapUsed / 1024, 1)} KB heap per connection`,
        );
      } catch (err) {
        problems.push((err as Error).message);
      } finally {
        await sys.stop();
      }
    }
  } finally {
    await Promise.all([warm.close(), fleet.close()]);
    if (redis.private) await batch.store.close();
    else await batch.destroy();
    redis.stop();
  }
  const shoal = rows.find((r) => r.system === 'shoal');
  const data: MemoryData = { connections: n, warmup, rows, targetKb: TARGET_KB };
  if (shoal && !options.quick && shoal.perConnection.rss / 1024 > TARGET_KB)
    log(`shoal misses the ${TARGET_KB} KB target: ${fmt(shoal.perConnection.rss / 1024, 1)} KB`);
  return { data, markdown: render(data), problems };
}

function render(d: MemoryData): string {
  const kb = (bytes: number) => fmt(bytes / 1024, 1);
  const mb = (bytes: number) => fmt(bytes / 2 ** 20, 1);
  const rows = d.rows.map((r) => [
    SYSTEM_LABELS[r.system].replace(/\(.*\)/, '(1 process)'),
    fmt(r.connections),
    `${mb(r.before.rss)} → ${mb(r.after.rss)}`,
    `${mb(r.before.heapUsed)} → ${mb(r.after.heapUsed)}`,
    kb(r.perConnection.rss),
    kb(r.perConnection.heapUsed),
    kb(r.perConnection.external),
  ]);
  const shoal = d.rows.find((r) => r.system === 'shoal');
  const verdict = shoal
    ? `shoal: ${kb(shoal.perConnection.rss)} KB of RSS per idle connection — target ≤ ${d.targetKb} KB: ` +
      (shoal.perConnection.rss / 1024 <= d.targetKb
        ? 'met.'
        : `**missed** by ${kb(shoal.perConnection.rss - d.targetKb * 1024)} KB.`)
    : 'shoal: no result.';
  return [
    `${fmt(d.connections)} idle WebSocket clients on one server process (clients in 4 other processes), all in one ` +
      'room; every shoal client is its own signed-in session, so the gateway also holds its session and user channel ' +
      `subscriptions. Readings after forced garbage collection; the baseline after ${fmt(d.warmup)} warm-up ` +
      'connections came and went. Socket.IO runs with its Redis adapter, as in a cluster.',
    '',
    table(
      ['server', 'connections', 'RSS MiB', 'heap used MiB', 'RSS KB/conn', 'heap KB/conn', 'external KB/conn'],
      rows,
    ),
    '',
    verdict,
  ].join('\n');
}

export const memory: Scenario<MemoryData> = {
  name: 'memory',
  title: 'Scenario 4 — memory per idle connection (shoal gateway vs Socket.IO vs raw ws)',
  run,
};

if (isMain(import.meta.url)) await main([memory]);
