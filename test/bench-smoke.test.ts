import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BusLatencyData } from '../bench/bus-latency.js';
import type { ConcurrencyData } from '../bench/concurrency.js';
import type { FanoutData } from '../bench/fanout.js';
import type { ScenarioReport } from '../bench/lib/results.js';
import type { LifecycleData } from '../bench/lifecycle-lag.js';
import type { MemoryData } from '../bench/memory.js';
import type { StormData } from '../bench/reconnect-storm.js';
import type { Level, SessionHttpData } from '../bench/session-http.js';
import { ENGINE_URLS, engineSkipReason } from './helpers/engines.js';
import { captureOutput, ROOT } from './helpers/processes.js';

/**
 * The benchmarks still run end to end (--quick sizes, results in a temp dir, never
 * bench/results): servers start, load is generated, results are written and sane.
 */
const skip = await engineSkipReason('redis');
const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-smoke-'));

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A results directory of the test's own: the benchmarks run side by side, and each rewrites latest.md. */
function resultsDir(name: string): string {
  const own = join(dir, name);
  mkdirSync(own, { recursive: true });
  return own;
}

function runBench(out: string, script: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, '--quick', ...args], {
      cwd: ROOT,
      env: { ...process.env, BENCH_RESULTS_DIR: out, BENCH_REDIS: ENGINE_URLS.redis },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = captureOutput(child);
    // SIGTERM, not SIGKILL: the bench then kills the servers it started.
    const timer = setTimeout(() => child.kill('SIGTERM'), 140_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output: output() });
    });
  });
}

function report<T>(out: string, name: string): ScenarioReport<T> {
  return JSON.parse(readFileSync(join(out, `${name}.json`), 'utf8')) as ScenarioReport<T>;
}

// Side by side: each waits mostly on its own servers and load, and checks counts, never speed.
describe.skipIf(skip !== undefined)('benchmarks (--quick smoke run)', { concurrent: true }, () => {
  it('concurrency: shoal keeps every concurrent write and increment; express-session is measured', async () => {
    const out = resultsDir('concurrency');
    const { code, output } = await runBench(out, 'bench/concurrency.ts', ['--requests', '20']);
    expect(code, output).toBe(0);
    const r = report<ConcurrencyData>(out, 'concurrency');
    expect(r.quick).toBe(true);
    expect(r.problems).toEqual([]);
    expect(r.data.requests).toBe(20);
    const shoal = r.data.rows.find((row) => row.impl === 'shoal');
    const peer = r.data.rows.find((row) => row.impl === 'express-session');
    expect(shoal).toMatchObject({ writesAccepted: 20, keysKept: 20, incrementsAccepted: 20, finalCount: 20 });
    // The express-session drop-in merges distinct properties; its /incr is a read-modify-write of one key.
    const dropIn = r.data.rows.find((row) => row.impl === 'drop-in');
    expect(dropIn).toMatchObject({ writesAccepted: 20, keysKept: 20, incrementsAccepted: 20 });
    expect(peer?.writesAccepted).toBe(20);
    expect(peer?.keysKept).toBeGreaterThanOrEqual(1);
    expect(peer?.keysKept).toBeLessThanOrEqual(20);
    expect(peer?.finalCount).toBeGreaterThanOrEqual(1);
    expect(peer?.finalCount).toBeLessThanOrEqual(20);
    expect(readFileSync(join(out, 'latest.md'), 'utf8')).toContain('<!-- bench:concurrency -->');
  }, 120_000);

  it('session-http (loopback, through a delay proxy, on Fastify, node:http and Hono): every server answers with 2xx; rates, latencies, CPU, session-layer CPU and ratios are written', async () => {
    const out = resultsDir('session-http');
    const { code, output } = await runBench(out, 'bench/session-http.ts', ['--duration', '0.5', '--connections', '4']);
    expect(code, output).toBe(0);
    for (const [name, connections, delay, impls] of [
      ['session-http', 4, 0, ['shoal', 'express-shoal', 'express-session', 'bare', 'drop-in', 'express-floor']],
      ['session-http-remote-redis', 1, 1, ['shoal', 'express-session']],
      ['session-http-fastify', 4, 0, ['fastify-shoal', 'fastify-session', 'fastify-bare']],
      // No session peer on these two: shoal against its bare server alone.
      ['session-http-node', 4, 0, ['node-shoal', 'node-bare']],
      ['session-http-hono', 4, 0, ['hono-shoal', 'hono-bare']],
    ] as const) {
      const r = report<SessionHttpData>(out, name);
      expect(r.problems).toEqual([]);
      expect(r.data).toMatchObject({ impls, proxyDelayMs: delay, durationS: 0.5 });
      expect(r.data.levels.map((l) => l.connections)).toEqual([connections]);
      const level = r.data.levels[0] as Level;
      // Through the proxy a round trip takes at least both delays.
      expect(r.data.measuredRttMs).toBeGreaterThanOrEqual(2 * delay);
      for (const impl of impls) {
        for (const route of ['read', 'write'] as const) {
          const m = level.results[impl]?.[route];
          expect(m?.requestsPerSec, `${name} ${impl} ${route}`).toBeGreaterThan(0);
          if (!m) continue;
          expect(m.non2xx + m.errors + m.timeouts, `${name} ${impl} ${route}`).toBe(0);
          expect(m.latencyMs.p99).toBeGreaterThanOrEqual(m.latencyMs.p50);
          if (process.platform === 'linux') expect(m.costs.serverCpuUs).toBeGreaterThan(0);
        }
      }
      const names = level.ratios.map((x) => x.name);
      const shoal = impls[0];
      const peer = impls.find((x) => x === 'express-session' || x === 'fastify-session');
      const bare = impls.find((x) => x.endsWith('bare'));
      expect(names.includes(`${shoal} / ${peer}, write route`)).toBe(peer !== undefined);
      // The session layer's CPU is compared as a ratio only against a peer; without one it is the µs below.
      expect(names.some((x) => x.startsWith('session-layer'))).toBe(peer !== undefined && bare !== undefined);
      // Bare Express has no Redis round trips to compare in the latency-bound variant.
      expect(names.includes(`${shoal} / ${bare}, read route`)).toBe(bare !== undefined);
      expect(names.includes('drop-in / express-session, write route')).toBe(impls.includes('drop-in' as never));
      expect(names.includes('express-floor / bare, read route')).toBe(impls.includes('express-floor' as never));
      for (const ratio of level.ratios) {
        // A difference of two CPU figures may be negative in one short round on a busy machine; req/s ratios may not.
        if (ratio.name.startsWith('session-layer')) expect(Number.isFinite(ratio.value), ratio.name).toBe(true);
        else expect(Number.isFinite(ratio.value) && ratio.value > 0, ratio.name).toBe(true);
      }
      // The session layer's CPU above bare: one row per stateful server and route, every round.
      expect(level.layer.length).toBe(bare ? 2 * (impls.length - 1) : 0);
      for (const c of level.layer) expect(c.perRound.every(Number.isFinite), `${c.impl} ${c.route}`).toBe(true);
    }
    const latest = readFileSync(join(out, 'latest.md'), 'utf8');
    for (const name of [
      'session-http',
      'session-http-remote-redis',
      'session-http-fastify',
      'session-http-node',
      'session-http-hono',
    ])
      expect(latest).toContain(`<!-- bench:${name} -->`);
  }, 300_000);

  it('realtime scenarios 3–7 (one run of bench/run.ts): deliveries counted, nothing lost, every session ended once', async () => {
    const realtime = ['fanout', 'memory', 'reconnect-storm', 'bus-latency', 'lifecycle-lag'];
    const out = resultsDir('realtime');
    const { code, output } = await runBench(
      out,
      'bench/run.ts',
      realtime.flatMap((name) => ['--only', name]),
    );
    expect(code, output).toBe(0);
    for (const name of realtime) expect(report(out, name).problems, name).toEqual([]);

    const fanout = report<FanoutData>(out, 'fanout').data;
    for (const system of ['shoal', 'socketio', 'ws'] as const) {
      for (const sockets of fanout.sizes.sockets) {
        const row = fanout.saturation.find((r) => r.system === system && r.sockets === sockets);
        expect(row?.deliveredPerSec, `${system} ${sockets}`).toBeGreaterThan(0);
        expect(row?.lost).toBe(0);
      }
      for (const rate of fanout.sizes.rates) {
        const row = fanout.fixed.find((r) => r.system === system && r.rate === rate);
        expect(row?.deliveredPerSec, `${system} ${rate}/s`).toBeGreaterThan(0);
        expect(row?.lost).toBe(0);
        expect(row?.latency.p99Ms).toBeGreaterThanOrEqual(row?.latency.p50Ms ?? Number.NaN);
      }
    }
    expect(fanout.targets.map((t) => t.name).join('\n')).toMatch(/shoal \/ raw ws[\s\S]*shoal \/ Socket\.IO[\s\S]*p99/);

    const memory = report<MemoryData>(out, 'memory').data;
    expect(memory.rows.map((r) => r.system)).toEqual(['shoal', 'socketio', 'ws']);
    for (const r of memory.rows) {
      expect(r.connections).toBe(memory.connections);
      expect(r.after.heapUsed).toBeGreaterThan(0);
      expect(Number.isFinite(r.perConnection.rss)).toBe(true);
    }

    const storm = report<StormData>(out, 'reconnect-storm').data;
    expect(storm).toMatchObject({ resumed: storm.browsers, lost: 0, duplicates: 0, notRecovered: 0, elsewhere: 0 });
    expect(storm.resumeMs.p99).toBeGreaterThanOrEqual(storm.resumeMs.p50);
    // Every browser's reconnect loaded its session once.
    expect(Object.fromEntries(storm.redisCommands).hgetall).toBeGreaterThanOrEqual(storm.browsers);

    const bus = report<BusLatencyData>(out, 'bus-latency').data;
    expect(bus.rows.map((r) => r.bus)).toEqual(['sqlite', 'sqlite', 'redis']);
    for (const r of bus.rows) {
      expect(r.published).toBeGreaterThan(0);
      expect(r.received).toBe(r.published);
      expect(r.latency.p99Ms).toBeGreaterThanOrEqual(r.latency.p50Ms);
    }

    const lifecycle = report<LifecycleData>(out, 'lifecycle-lag').data;
    expect(lifecycle).toMatchObject({ ended: lifecycle.sessions, missing: 0, duplicates: 0, wrongReason: 0 });
    expect(lifecycle.lagMs.p50).toBeGreaterThanOrEqual(0);

    const latest = readFileSync(join(out, 'latest.md'), 'utf8');
    for (const name of realtime) expect(latest).toContain(`<!-- bench:${name} -->`);
  }, 150_000);
});
