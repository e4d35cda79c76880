/**
 * Scenario 2 — concurrent writes from one browser through a round-robin balancer:
 * N nodes of each implementation on one Redis, one cookie after login, then a burst of
 * concurrent POST /set/k<i> (distinct keys) and a burst of concurrent POST /incr/n
 * (one counter). Counts what survived: the failure mode behind "don't lose session
 * writes when two requests race".
 *
 * `tsx bench/concurrency.ts [--quick] [--requests n] [--nodes n] [--tsx]`
 */
import { dropInScript, shoalScript } from './lib/build.js';
import { json, RoundRobinBrowser } from './lib/client.js';
import { IMPLS, type ImplName, implSpec } from './lib/impls.js';
import { type BenchNode, owe, startNodes } from './lib/nodes.js';
import type { BenchOptions } from './lib/options.js';
import { cleanupRun, newRunId, redisUnavailable } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { isMain, main, type Scenario } from './lib/scenario.js';

const COMPARED: ImplName[] = ['shoal', 'drop-in', 'express-session'];

export interface ConcurrencyRow {
  impl: ImplName;
  requests: number;
  nodes: number;
  /** Distinct-key writes answered 2xx. */
  writesAccepted: number;
  /** k<i> keys holding v<i> afterwards. */
  keysKept: number;
  incrementsAccepted: number;
  finalCount: number;
  /** Nodes that answered the final reads (all of them should agree). */
  readsAgree: boolean;
  writeBurstMs: number;
  incrBurstMs: number;
}

export interface ConcurrencyData {
  requests: number;
  nodes: number;
  rows: ConcurrencyRow[];
}

type SessionView = { attributes: Record<string, unknown>; node: string };

/** Reads the session once from every node; they must all say the same thing. */
async function readEverywhere(
  browser: RoundRobinBrowser,
  what: string,
): Promise<{ view: SessionView; agree: boolean }> {
  const views: SessionView[] = [];
  for (let i = 0; i < browser.urls.length; i++)
    views.push(await json<SessionView>(await browser.fetch('/session'), what));
  const first = views[0] as SessionView;
  const same = views.every((v) => JSON.stringify(v.attributes) === JSON.stringify(first.attributes));
  return { view: first, agree: same };
}

async function burst(n: number, send: (i: number) => Promise<Response>): Promise<{ ok: number; ms: number }> {
  const t0 = performance.now();
  const statuses = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      send(i).then(
        async (r) => {
          await r.arrayBuffer();
          return r.status;
        },
        () => 0,
      ),
    ),
  );
  return { ok: statuses.filter((s) => s >= 200 && s < 300).length, ms: performance.now() - t0 };
}

async function measureImpl(name: ImplName, nodes: BenchNode[], runId: string, n: number) {
  const browser = new RoundRobinBrowser(nodes.map((x) => x.url));
  const user = `${runId}-alice`;
  await json(await browser.fetch(`/login?user=${user}`, { method: 'POST' }), `${name} login`);
  const cookieName = IMPLS[name].cookieName as string;
  if (!browser.cookies.has(cookieName)) throw new Error(`${name} login set no ${cookieName} cookie`);

  const writes = await burst(n, (i) =>
    browser.fetch(`/set/k${i}`, { method: 'POST', body: `v${i}`, headers: { 'content-type': 'text/plain' } }),
  );
  const afterWrites = await readEverywhere(browser, `${name} read after writes`);
  const keysKept = Array.from({ length: n }, (_, i) => i).filter(
    (i) => afterWrites.view.attributes[`k${i}`] === `v${i}`,
  ).length;

  const incrs = await burst(n, () => browser.fetch('/incr/n', { method: 'POST' }));
  const afterIncrs = await readEverywhere(browser, `${name} read after increments`);
  const count = afterIncrs.view.attributes.n;

  const row: ConcurrencyRow = {
    impl: name,
    requests: n,
    nodes: nodes.length,
    writesAccepted: writes.ok,
    keysKept,
    incrementsAccepted: incrs.ok,
    finalCount: typeof count === 'number' ? count : 0,
    readsAgree: afterWrites.agree && afterIncrs.agree,
    writeBurstMs: writes.ms,
    incrBurstMs: incrs.ms,
  };
  return row;
}

async function run(options: BenchOptions, log: (line: string) => void) {
  const down = await redisUnavailable(options.redisUrl);
  if (down) throw new Error(down);
  const runId = newRunId();
  const paid = owe(() => cleanupRun(options.redisUrl, runId));
  const n = options.requests;
  const problems: string[] = [];
  const rows: ConcurrencyRow[] = [];
  const all: BenchNode[] = [];
  try {
    const scripts: Partial<Record<ImplName, string>> = {
      shoal: await shoalScript(options),
      'drop-in': await dropInScript(options),
    };
    // One implementation's nodes at a time: nine processes starting at once on a busy machine miss the ready timeout.
    const started: BenchNode[][] = [];
    for (const name of COMPARED) {
      const script = scripts[name];
      started.push(
        await startNodes(options.nodes, implSpec(IMPLS[name], options.redisUrl, runId, script ? { script } : {})),
      );
      all.push(...(started.at(-1) as BenchNode[]));
    }
    log(`${all.length} nodes up (${options.nodes} per implementation)`);
    for (const [i, name] of COMPARED.entries()) {
      const row = await measureImpl(name, started[i] as BenchNode[], runId, n);
      rows.push(row);
      log(`${name}: ${row.keysKept}/${n} keys kept, counter at ${row.finalCount}/${n}`);
    }
  } finally {
    await Promise.all(all.map((node) => node.stop()));
    paid();
    await cleanupRun(options.redisUrl, runId).catch((err: Error) =>
      problems.push(`cleanup of ${runId} failed: ${err.message}`),
    );
  }
  for (const r of rows) {
    if (r.writesAccepted !== n || r.incrementsAccepted !== n)
      problems.push(
        `${r.impl}: only ${r.writesAccepted}/${n} writes and ${r.incrementsAccepted}/${n} increments got a 2xx`,
      );
    if (!r.readsAgree) problems.push(`${r.impl}: the nodes disagreed on the session after the burst`);
  }
  const shoal = rows.find((r) => r.impl === 'shoal');
  if (shoal && (shoal.keysKept !== n || shoal.finalCount !== n))
    problems.push(`shoal lost writes: ${shoal.keysKept}/${n} keys kept, counter ${shoal.finalCount}/${n}`);
  // The drop-in merges distinct properties; its /incr is express-session's read-modify-write of one key.
  const dropIn = rows.find((r) => r.impl === 'drop-in');
  if (dropIn && dropIn.keysKept !== n) problems.push(`the drop-in lost writes: ${dropIn.keysKept}/${n} keys kept`);
  const data: ConcurrencyData = { requests: n, nodes: options.nodes, rows };
  return { data, markdown: render(data), problems };
}

function render(d: ConcurrencyData): string {
  return [
    `${d.nodes} nodes per implementation on one Redis, requests spread round-robin (no stickiness), one browser ` +
      `(one session cookie after login). Burst 1: ${d.requests} concurrent \`POST /set/k<i>\` (distinct keys); ` +
      `burst 2: ${d.requests} concurrent \`POST /incr/n\` (same key). express-session's /incr is the usual ` +
      "`req.session.n = (req.session.n ?? 0) + 1`, and so is the drop-in's (the same code: a read-modify-write of one " +
      'key stays last-writer-wins); shoal\'s own API uses `session.increment("n")`.',
    '',
    table(
      ['implementation', 'distinct-key writes kept', 'increments counted', 'burst 1 ms', 'burst 2 ms', 'nodes agree'],
      d.rows.map((r) => [
        IMPLS[r.impl].label,
        `${r.keysKept} / ${r.requests}`,
        `${r.finalCount} / ${r.requests}`,
        fmt(r.writeBurstMs),
        fmt(r.incrBurstMs),
        r.readsAgree ? 'yes' : 'no',
      ]),
    ),
  ].join('\n');
}

export const concurrency: Scenario<ConcurrencyData> = {
  name: 'concurrency',
  title:
    'Scenario 2 — concurrent writes from one browser across round-robin nodes (shoal, its express-session drop-in, express-session)',
  run,
};

if (isMain(import.meta.url)) await main([concurrency]);
