/**
 * Scenario 7 — onSessionEnd lag: 10,000 sessions whose idle deadline falls at the same
 * moment, on a Redis store swept by 3 probe nodes (each with the default sweeper: every
 * 250 ms it claims a batch of due sessions, runs onSessionEnd, acknowledges). Sessions are
 * written straight into the store, in bulk, with the deadline set. Afterwards
 * `/_probe/ended` is read from every node: lag = handledAt − endedAt (the deadline) per
 * session, and each must have ended exactly once across the 3 nodes.
 *
 * `tsx bench/lifecycle-lag.ts [--quick] [--tsx]`
 */
import type { Ended } from '../examples/probe/app.js';
import { shoalScript } from './lib/build.js';
import { json } from './lib/client.js';
import { percentiles } from './lib/histogram.js';
import { IMPLS, implSpec } from './lib/impls.js';
import { type BenchNode, startNodes, stopNodes } from './lib/nodes.js';
import type { BenchOptions } from './lib/options.js';
import { benchRedis } from './lib/private-redis.js';
import { newRunId } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { isMain, main, type Scenario } from './lib/scenario.js';
import { createSessions } from './lib/sessions.js';

export interface LifecycleData {
  sessions: number;
  nodes: number;
  sweepIntervalMs: number;
  /** ms it took to write the sessions. */
  createMs: number;
  ended: number;
  missing: number;
  /** Sessions handled more than once (across nodes, or retried). */
  duplicates: number;
  wrongReason: number;
  lagMs: { count: number; p50: number; p99: number; max: number };
  /** Ends handled per second, from the deadline to the last one. */
  endsPerSec: number;
  perNode: Array<{ node: string; handled: number }>;
}

async function collect(nodes: BenchNode[]): Promise<Array<{ node: string; ended: Ended[] }>> {
  return Promise.all(
    nodes.map(async (n) => ({
      node: n.name,
      ended: await json<Ended[]>(await fetch(`${n.url}/_probe/ended`), `${n.name} /_probe/ended`),
    })),
  );
}

async function run(options: BenchOptions, log: (line: string) => void) {
  const count = options.quick ? 300 : 10_000;
  const nodeCount = 3;
  const sweepIntervalMs = 250;
  const runId = newRunId();
  const redis = await benchRedis(options.redisUrl);
  const problems: string[] = [];
  let nodes: BenchNode[] = [];
  try {
    const script = await shoalScript(options);
    const spec = implSpec(IMPLS.shoal, redis.url, runId, { script });
    nodes = await startNodes(nodeCount, {
      ...spec,
      name: 'probe',
      env: { ...spec.env, SHOAL_IDLE_TIMEOUT: '2s', SHOAL_SWEEP_INTERVAL: `${sweepIntervalMs}ms` },
    });
    log(`${nodeCount} probe nodes up; writing ${count} sessions`);
    // One deadline for all, far enough ahead that every session exists before it passes.
    const leadMs = options.quick ? 1500 : 1000 + Math.ceil(count * 0.15);
    const deadline = Date.now() + leadMs;
    const t0 = performance.now();
    const batch = await createSessions(redis.url, count, {
      namespace: runId,
      userPrefix: null,
      deadline: () => deadline,
    });
    const createMs = performance.now() - t0;
    await batch.store.close();
    if (Date.now() >= deadline)
      problems.push(`writing the sessions took ${fmt(createMs)} ms, past their deadline: lags are overstated`);
    log(`${count} sessions written in ${fmt(createMs)} ms; they all end at the same moment`);

    const ids = new Set(batch.sessions.map((s) => s.id));
    // Bounded: far more than the slowest plausible sweep (a few hundred ends per second).
    const giveUp = deadline + 10_000 + count * 10;
    let lists: Awaited<ReturnType<typeof collect>> = [];
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      lists = await collect(nodes);
      const handled = new Set(lists.flatMap((l) => l.ended.map((e) => e.id)).filter((id) => ids.has(id)));
      if (handled.size >= count || Date.now() > giveUp) break;
    }
    const all = lists.flatMap((l) => l.ended.filter((e) => ids.has(e.id)));
    const perId = new Map<string, number>();
    for (const e of all) perId.set(e.id, (perId.get(e.id) ?? 0) + 1);
    const lags = all.map((e) => e.handledAt - e.endedAt);
    const last = Math.max(...all.map((e) => e.handledAt));
    const data: LifecycleData = {
      sessions: count,
      nodes: nodeCount,
      sweepIntervalMs,
      createMs,
      ended: perId.size,
      missing: count - perId.size,
      duplicates: [...perId.values()].filter((n) => n > 1).length,
      wrongReason: all.filter((e) => e.reason !== 'idle-timeout').length,
      lagMs: percentiles(lags),
      endsPerSec: all.length / Math.max(0.001, (last - deadline) / 1000),
      perNode: lists.map((l) => ({ node: l.node, handled: l.ended.filter((e) => ids.has(e.id)).length })),
    };
    log(`${data.ended}/${count} ended; lag p50 ${fmt(data.lagMs.p50)} ms, p99 ${fmt(data.lagMs.p99)} ms`);
    if (data.missing > 0) problems.push(`${data.missing} sessions never ended`);
    if (data.duplicates > 0) problems.push(`${data.duplicates} sessions ended more than once`);
    if (data.wrongReason > 0) problems.push(`${data.wrongReason} ends had a reason other than idle-timeout`);
    return { data, markdown: render(data), problems };
  } finally {
    await stopNodes(nodes);
    redis.stop();
  }
}

function render(d: LifecycleData): string {
  return [
    `${fmt(d.sessions)} sessions written straight into a Redis store (${fmt(d.createMs)} ms), every idle deadline at the ` +
      `same moment; ${d.nodes} probe nodes sweep it with the default sweeper (a tick every ${d.sweepIntervalMs} ms ` +
      'claims batches of 50 back to back while it finds due sessions), each recording what its onSessionEnd handled. ' +
      'Lag = when the handler ran − the deadline.',
    '',
    table(
      ['measure', 'value'],
      [
        ['sessions ended', `${fmt(d.ended)} / ${fmt(d.sessions)}`],
        ['ended more than once', fmt(d.duplicates)],
        ['lag p50', `${fmt(d.lagMs.p50)} ms`],
        ['lag p99', `${fmt(d.lagMs.p99)} ms`],
        ['lag max', `${fmt(d.lagMs.max)} ms`],
        ['ends handled per second', fmt(d.endsPerSec)],
        ['handled per node', d.perNode.map((n) => `${n.node}: ${fmt(n.handled)}`).join(', ')],
      ],
    ),
  ].join('\n');
}

export const lifecycleLag: Scenario<LifecycleData> = {
  name: 'lifecycle-lag',
  title: 'Scenario 7 — onSessionEnd lag for 10,000 sessions expiring at once across 3 nodes',
  run,
};

if (isMain(import.meta.url)) await main([lifecycleLag]);
