/**
 * Scenario 5 — reconnect storm: 1,000 browsers (the real SDK, src/client, with the `ws`
 * WebSocket injected) hold a socket on gateway A, in one room, while the benchmark
 * publishes to that room continuously with sequential ids. A is SIGKILLed: every
 * browser reconnects through the balancer (round-robin, a refused connection goes to the
 * next gateway) to B with its resume cursor. Measured: time from the kill until each
 * browser had the room subscribed again (p50/p99/max), messages lost or duplicated
 * (must be 0: the gateway replays the gap from the bus history), `recovered: false`
 * resets (must be 0), and what the storm cost Redis (INFO commandstats of a private
 * redis-server between the kill and the last resume).
 *
 * `tsx bench/reconnect-storm.ts [--quick] [--tsx]`
 */
import { Redis } from 'ioredis';
import { createBus } from '../src/bus/index.js';
import { createPublisher } from '../src/realtime/publisher.js';
import { nowMs, percentiles } from './lib/histogram.js';
import { IpcChild } from './lib/ipc.js';
import type { BenchNode } from './lib/nodes.js';
import type { BenchOptions } from './lib/options.js';
import { benchRedis, commandDelta, commandStats } from './lib/private-redis.js';
import { BENCH_ORIGIN, startSystem } from './lib/realtime-systems.js';
import { newRunId } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { isMain, main, type Scenario } from './lib/scenario.js';
import { createSessions } from './lib/sessions.js';
import type { BrowserReport, StormCommand, StormReply } from './lib/storm-client.js';

const SCRIPT = 'bench/lib/storm-client.ts';

export interface StormData {
  browsers: number;
  clientProcesses: number;
  publishRate: number;
  privateRedis: boolean;
  published: number;
  /** Browsers that had the room subscribed again on the surviving gateway. */
  resumed: number;
  /** ms from the SIGKILL until each browser's room was subscribed again. */
  resumeMs: { count: number; p50: number; p99: number; max: number };
  /** ms from the kill until the last browser had resumed. */
  allResumedMs: number;
  lost: number;
  duplicates: number;
  notRecovered: number;
  resets: number;
  /** Browsers that ended up on a gateway other than B. */
  elsewhere: number;
  /** Redis commands executed between the kill and the last resume, largest first. */
  redisCommands: Array<[string, number]>;
  /** Of which the publisher's own (one EVALSHA per message). */
  publisherCommands: number;
}

type StormProcess = IpcChild<StormCommand, StormReply>;

async function reportAll(procs: StormProcess[]): Promise<BrowserReport[]> {
  const replies = await Promise.all(procs.map((p) => p.ask({ cmd: 'report' }, 'report')));
  return replies.flatMap((r) => r.browsers);
}

async function run(options: BenchOptions, log: (line: string) => void) {
  const browsers = options.quick ? 60 : 1000;
  const processes = options.quick ? 1 : 2;
  const rate = 20;
  const runId = newRunId();
  const room = `room:${runId}`;
  const redis = await benchRedis(options.redisUrl);
  const stats = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  const batch = await createSessions(redis.url, browsers, { userPrefix: `${runId}-u` });
  const problems: string[] = [];
  const procs: StormProcess[] = [];
  const gateways: BenchNode[] = [];
  const bus = await createBus(redis.url);
  const publisher = createPublisher(bus).to(room);
  let published = 0;
  let publishing = false;
  let publishLoop: Promise<void> = Promise.resolve();
  try {
    // Two single-gateway systems rather than one with two: A and B must be told apart.
    for (const name of ['a', 'b']) {
      const sys = await startSystem({
        name: 'shoal',
        servers: 1,
        redisUrl: redis.url,
        room,
        runId,
        sessions: batch.sessions,
        tsx: options.tsx,
        serverName: `gw-${name}`,
      });
      gateways.push(...sys.servers);
      log(`gateway ${name.toUpperCase()}: ${sys.servers[0]?.url} (pid ${sys.servers[0]?.pid})`);
    }
    const [a, b] = gateways as [BenchNode, BenchNode];
    const upstreams = [a.url.replace(/^http/, 'ws'), b.url.replace(/^http/, 'ws')];
    procs.push(
      ...(await Promise.all(Array.from({ length: processes }, () => IpcChild.start<StormCommand, StormReply>(SCRIPT)))),
    );
    const t0 = performance.now();
    const connected = await Promise.all(
      procs.map((p, i) =>
        p.ask(
          {
            cmd: 'connect',
            cookies: batch.sessions.filter((_, k) => k % processes === i).map((s) => s.cookie),
            upstreams,
            ready: [true, false],
            room,
            origin: BENCH_ORIGIN,
          },
          'connected',
          60_000,
        ),
      ),
    );
    const failed = connected.reduce((n, r) => n + r.failed, 0);
    if (failed > 0) throw new Error(`${failed} of ${browsers} browsers could not connect to gateway A`);
    log(`${browsers} browsers on gateway A in ${fmt(performance.now() - t0)} ms; B joins the balancer`);
    for (const p of procs) p.send({ cmd: 'routes', ready: [true, true] });

    publishing = true;
    publishLoop = (async () => {
      // Sequential publishes: ids follow offsets, so a browser can check order with a counter.
      const start = Date.now();
      while (publishing && Date.now() - start < 120_000) {
        const due = Math.floor(((Date.now() - start) / 1000) * rate);
        while (published < due) await publisher.send('m', { id: ++published, t: nowMs() });
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 1000));

    const before = await commandStats(stats);
    const publishedBefore = published;
    const killAt = nowMs();
    process.kill(a.pid, 'SIGKILL');
    log('gateway A killed (SIGKILL)');
    let reports: BrowserReport[] = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      reports = await reportAll(procs);
      if (reports.every((r) => r.resumedAt !== null) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const after = await commandStats(stats);
    const publishedDuring = published - publishedBefore;
    const resumedTimes = reports.flatMap((r) => (r.resumedAt === null ? [] : [r.resumedAt - killAt]));
    log(`${resumedTimes.length}/${browsers} resumed, the last after ${fmt(Math.max(...resumedTimes, 0))} ms`);

    // Keep publishing a moment on B alone, then wait for every browser to have the last id.
    await new Promise((r) => setTimeout(r, 1000));
    publishing = false;
    await publishLoop;
    const settleBy = Date.now() + 10_000;
    while (Date.now() < settleBy) {
      reports = await reportAll(procs);
      if (reports.every((r) => r.lastId >= published)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const bGateway = b.name;
    const data: StormData = {
      browsers,
      clientProcesses: processes,
      publishRate: rate,
      privateRedis: redis.private,
      published,
      resumed: resumedTimes.length,
      resumeMs: percentiles(resumedTimes),
      allResumedMs: resumedTimes.length === browsers ? Math.max(...resumedTimes) : Number.NaN,
      lost: reports.reduce((n, r) => n + r.missing + Math.max(0, published - r.lastId), 0),
      duplicates: reports.reduce((n, r) => n + r.duplicates, 0),
      notRecovered: reports.filter((r) => r.recovered === false).length,
      resets: reports.reduce((n, r) => n + r.resets, 0),
      elsewhere: reports.filter((r) => r.gateway !== bGateway).length,
      redisCommands: commandDelta(before, after).filter(([cmd]) => cmd !== 'info'),
      publisherCommands: publishedDuring,
    };
    if (data.resumed < browsers) problems.push(`${browsers - data.resumed} browsers never resumed within 30 s`);
    if (data.lost > 0) problems.push(`${data.lost} messages lost during the storm`);
    if (data.duplicates > 0) problems.push(`${data.duplicates} messages delivered twice`);
    if (data.notRecovered + data.resets > 0)
      problems.push(`${data.notRecovered} resumes answered recovered:false (${data.resets} resets)`);
    if (data.elsewhere > 0) problems.push(`${data.elsewhere} browsers are not on gateway B`);
    return { data, markdown: render(data), problems };
  } finally {
    publishing = false;
    await publishLoop.catch(() => {});
    await Promise.all(procs.map((p) => p.stop({ cmd: 'close' })));
    await Promise.all(gateways.map((g) => g.stop()));
    await bus.close().catch(() => {});
    stats.disconnect();
    if (redis.private) await batch.store.close();
    else await batch.destroy();
    redis.stop();
  }
}

function render(d: StormData): string {
  const per = (n: number) => fmt(n / d.browsers, 2);
  const commands = d.redisCommands.slice(0, 8).map(([cmd, n]) => [cmd, fmt(n), per(n)]);
  const lines = [
    `${fmt(d.browsers)} browsers (the SDK from src/client, \`ws\` injected, in ${d.clientProcesses} process(es)), each its own ` +
      `signed-in session, all on gateway A and in one room; ${d.publishRate} messages/s published to the room with ` +
      'sequential ids throughout. A is SIGKILLed; the browsers reconnect through a round-robin balancer that retries a ' +
      'refused connection on the next gateway (and then marks the refusing one down), with their resume cursors, ' +
      `using the SDK's default full-jitter backoff (first window 500 ms). Redis: ${d.privateRedis ? 'a private redis-server' : 'the shared one (its counts include other clients)'}.`,
    '',
    table(
      ['measure', 'value'],
      [
        ['browsers resumed on B', `${fmt(d.resumed)} / ${fmt(d.browsers)}`],
        ['time from kill to room re-subscribed, p50', `${fmt(d.resumeMs.p50)} ms`],
        ['… p99', `${fmt(d.resumeMs.p99)} ms`],
        ['… max (all resumed)', `${fmt(d.resumeMs.max)} ms`],
        ['messages published (whole run)', fmt(d.published)],
        ['messages lost', fmt(d.lost)],
        ['messages duplicated', fmt(d.duplicates)],
        ['resumes answered recovered:false', fmt(d.notRecovered)],
      ],
    ),
    '',
    `Redis commands between the kill and the last resume (the publisher's own: ${fmt(d.publisherCommands)} EVALSHA, one ` +
      "per message; the gateway's bus reads, positions, presence and canary are EVALSHA too; a session load is one HGETALL):",
    '',
    table(['command', 'calls', 'per browser'], commands),
  ];
  return lines.join('\n');
}

export const reconnectStorm: Scenario<StormData> = {
  name: 'reconnect-storm',
  title: 'Scenario 5 — reconnect storm: 1,000 browsers lose their gateway (SIGKILL) and resume on another',
  run,
};

if (isMain(import.meta.url)) await main([reconnectStorm]);
