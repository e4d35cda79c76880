/**
 * CPU instructions per session request, by each Express, Fastify, node:http or Hono server of scenario 1 (the same peers, routes
 * and Redis), counted by valgrind's callgrind in the server process alone (the load generator and
 * Redis run outside it). An instruction count does not move with what else the machine runs, as CPU
 * time does, so a change to the hot path shows here on a busy 2-core machine too.
 *
 * `npx tsx bench/session-instructions.ts [--impls shoal,express-shoal,express-session,bare,express-floor,fastify-shoal,…] [--requests 1000]
 * [--warmup 2000] [--rounds 3] [--connections 10] [--tsx]`
 *
 * Each server runs as `valgrind --tool=callgrind --instr-atstart=no node --single-threaded …` (normal
 * JIT; one thread, so the garbage collector and the compilers run on the thread that is counted).
 * First each route gets 2 × `--warmup` requests uninstrumented (most of the JIT compiling happens there).
 * Then each round, per route: `--warmup` requests uninstrumented (JIT, pools, caches), then instrumentation
 * on, counters zeroed (`callgrind_control -z`), exactly `--requests` requests, a dump
 * (`callgrind_control -d`) whose total is the round's count, instrumentation off. A round's figure
 * includes whatever garbage collection fell into it: that is the main source of the spread.
 * shoal runs compiled (bench/lib/build.ts), as in production; `--tsx` runs the TypeScript through tsx.
 * Writes bench/results/session-instructions.md.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { implScript } from './lib/build.js';
import { bareOf, IMPLS, type ImplName, implSpec } from './lib/impls.js';
import { type BenchNode, owe, ROOT, startNode } from './lib/nodes.js';
import { positiveFlag } from './lib/options.js';
import { cleanupRun, newRunId, redisUnavailable } from './lib/redis.js';
import { fmt, table } from './lib/results.js';
import { load, login, median, ROUTES, type Route } from './lib/session-load.js';

const { values } = parseArgs({
  options: {
    impls: { type: 'string', default: 'express-shoal,express-session,bare' },
    requests: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '10' },
    tsx: { type: 'boolean', default: false },
    /** Keep the callgrind dumps (and, with --perf-map, node's /tmp/perf-<pid>.map) in this directory. */
    keep: { type: 'string' },
    /** Run node with --perf-basic-prof, so bench/instructions-by-function.ts can name JIT code in the kept dumps. */
    'perf-map': { type: 'boolean', default: false },
    redis: { type: 'string', default: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const impls = (values.impls as string).split(',') as ImplName[];
for (const name of impls) {
  if (!IMPLS[name]) throw new Error(`--impls: unknown server "${name}"; one of ${Object.keys(IMPLS).join(', ')}`);
}
const requests = positiveFlag(values, 'requests');
const warmup = positiveFlag(values, 'warmup');
const rounds = positiveFlag(values, 'rounds');
const connections = positiveFlag(values, 'connections');

const run = promisify(execFile);
const control = (pid: number, ...args: string[]) => run('callgrind_control', [...args, String(pid)]);

/** The instruction total of the dump numbered above `after`, once callgrind has written it. */
async function dumped(
  dir: string,
  pid: number,
  after: number,
): Promise<{ n: number; instructions: number; gc: number; compilers: number }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const numbers = (await readdir(dir))
      .map((f) => new RegExp(`^cg\\.${pid}\\.(\\d+)$`).exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .filter((n) => n > after);
    const n = Math.max(...numbers);
    if (numbers.length > 0) {
      const text = await readFile(join(dir, `cg.${pid}.${n}`), 'utf8');
      const summary = /^summary:\s+(\d+)/m.exec(text)?.[1];
      if (summary) return { n, instructions: Number(summary), ...(await gcAndCompilers(join(dir, `cg.${pid}.${n}`))) };
    }
    if (Date.now() > deadline) throw new Error(`callgrind wrote no dump for pid ${pid} in ${dir}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * V8's garbage collector, by the names of the functions that ran (JIT code has none, the collector
 * is C++): scavenges, marking, sweeping, compaction and the heap bookkeeping around them. Whether a
 * major collection falls into a round or the next is what spreads the totals most.
 */
const GC_FUNCTION =
  /Scaveng|MarkCompact|Marking|Sweeper|Evacuat|v8::internal::Heap::|heap::base::|HeapObject::SizeFromMap|GCTracer|MemoryChunk|MemoryAllocator|PagedSpace|SemiSpace|NewSpace|LargeObjectSpace|RememberedSet|SlotSet|TypedSlots|Pretenuring|Ephemeron|WeakObjects|MinorGC|ArrayBufferSweeper|LiveObjectRange|RecordMigratedSlot|PointersUpdating|StringTableCleaner|IterateObjectCache|RecordWrite/;

/**
 * V8's compilers (the optimising one, Maglev, Sparkplug, the parser and bytecode generator) and
 * deoptimisation, by function name: a function compiled (or thrown away and compiled again) during
 * a round, rather than before it, lands there once. They move a round's total nearly as much as a
 * major collection, and say nothing about what a request costs once its code is compiled.
 */
const COMPILER_FUNCTION =
  /v8::internal::compiler::|v8::internal::maglev::|v8::internal::baseline::|v8::internal::interpreter::|v8::internal::Parser|v8::internal::Scanner|v8::internal::Deoptimizer|v8::internal::Compiler::|v8::internal::Assembler|v8::internal::RelocIterator|v8::internal::SourcePositionTable|v8::internal::wasm::|Builtins_CompileLazy|v8::internal::Zone::/;

/** Instructions of a dump spent in the garbage collector, and in the compilers, from callgrind_annotate's self cost per function. */
async function gcAndCompilers(file: string): Promise<{ gc: number; compilers: number }> {
  const { stdout } = await run('callgrind_annotate', ['--threshold=100', file], { maxBuffer: 256 * 1024 * 1024 });
  let gc = 0;
  let compilers = 0;
  for (const line of stdout.split('\n')) {
    const m = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line);
    if (!m?.[1] || !m[2] || m[2].startsWith('PROGRAM TOTALS')) continue;
    const count = Number(m[1].replaceAll(',', ''));
    if (GC_FUNCTION.test(m[2])) gc += count;
    else if (COMPILER_FUNCTION.test(m[2])) compilers += count;
  }
  return { gc, compilers };
}

const down = await redisUnavailable(values.redis as string);
if (down) throw new Error(down);
const runId = newRunId();
const paid = owe(() => cleanupRun(values.redis as string, runId));
const dir = values.keep ?? (await mkdtemp(join(tmpdir(), `${runId}-callgrind-`)));
if (values.keep) await mkdir(dir, { recursive: true });
const load0 = loadavg();
/** Instructions per request, per "impl route", one entry per round; and of them outside the garbage collector. */
const results = new Map<string, number[]>();
const outsideGc = new Map<string, number[]>();
/** And outside both the garbage collector and the compilers: a request's work once its code is compiled. */
const steady = new Map<string, number[]>();
const key = (impl: ImplName, route: Route) => `${impl} ${route}`;
try {
  for (const name of impls) {
    const impl = IMPLS[name];
    const script = await implScript({ tsx: values.tsx as boolean }, impl);
    // --perf-basic-prof also writes V8's code log: into the dump directory, not the working one.
    const perfMap = ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(dir, `v8-${name}.log`)}`];
    const nodeFlags = ['--single-threaded', ...(values['perf-map'] ? perfMap : [])];
    const spec = implSpec(impl, values.redis as string, runId, { script, nodeFlags });
    // Under callgrind a loaded machine can stall the event loop past shoal's 2 s store timeout: a
    // request failed that way would only be noise here. (express-session's client has no timeout.)
    // The floor peer reads the same ?timeout= as shoal's store.
    if (impl.script.endsWith('.ts') || name === 'express-floor')
      spec.env = { ...spec.env, SHOAL_STORE: `${values.redis}?timeout=60s` };
    const node: BenchNode = await startNode({
      ...spec,
      launcher: ['valgrind', '--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${join(dir, 'cg.%p')}`],
      timeoutMs: 300_000,
    });
    let lastDump = 0;
    /**
     * Warm-up, then exactly `requests` counted requests. On a loaded machine a server stalled under
     * callgrind sometimes has a keep-alive connection reset under a request; such a round is counted
     * again (at most twice more) rather than ending the run, since it would only add noise.
     */
    const measuredLoad = async (n: BenchNode, route: Route, cookies: string[]) => {
      for (let attempt = 1; ; attempt++) {
        await load(n, route, cookies, warmup, { timeoutS: 120 });
        await control(n.pid, '-i', 'on');
        await control(n.pid, '-z');
        try {
          await load(n, route, cookies, requests, { timeoutS: 120 });
        } catch (err) {
          await control(n.pid, '-i', 'off');
          if (attempt >= 3 || !(err as { onlyConnectionErrors?: boolean }).onlyConnectionErrors) throw err;
          console.log(`${n.name} ${route}: ${(err as Error).message}; counting the round again`);
          continue;
        }
        await control(n.pid, '-d');
        return;
      }
    };
    try {
      const cookies = await login(node, runId, impl.stateful, connections);
      // Before the first round, longer: most of the optimising compiler's work happens here.
      for (const route of Object.keys(ROUTES) as Route[])
        await load(node, route, cookies, 2 * warmup, { timeoutS: 120 });
      for (let round = 0; round < rounds; round++)
        for (const route of Object.keys(ROUTES) as Route[]) {
          await measuredLoad(node, route, cookies);
          const dump = await dumped(dir, node.pid, lastDump);
          lastDump = dump.n;
          await control(node.pid, '-i', 'off');
          const perRequest = dump.instructions / requests;
          const mutator = (dump.instructions - dump.gc) / requests;
          results.set(key(name, route), [...(results.get(key(name, route)) ?? []), perRequest]);
          outsideGc.set(key(name, route), [...(outsideGc.get(key(name, route)) ?? []), mutator]);
          const compiled = (dump.instructions - dump.gc - dump.compilers) / requests;
          steady.set(key(name, route), [...(steady.get(key(name, route)) ?? []), compiled]);
          console.log(
            `${name} ${route} round ${round + 1}/${rounds}: ${fmt(perRequest)} instructions/request, ` +
              `${fmt(mutator)} outside the garbage collector, ${fmt(compiled)} outside it and the compilers${values.keep ? ` (${join(dir, `cg.${node.pid}.${dump.n}`)})` : ''}`,
          );
        }
    } finally {
      await node.stop(60_000);
    }
  }
} finally {
  await cleanupRun(values.redis as string, runId);
  paid();
  if (!values.keep) await rm(dir, { recursive: true, force: true });
}

const k = (n: number) => `${fmt(n / 1000, 1)} k`;
const spread = (xs: number[]) => `${k(median(xs))} (${k(Math.min(...xs))}–${k(Math.max(...xs))})`;
/** The median minus the bare server's, and in brackets the widest that difference can be given both spreads. */
const aboveBare = (own: number[], bare: number[]) =>
  bare.length
    ? `${k(median(own) - median(bare))} (${k(Math.min(...own) - Math.max(...bare))}–${k(Math.max(...own) - Math.min(...bare))})`
    : '—';
const rows = impls.flatMap((impl) =>
  (Object.keys(ROUTES) as Route[]).map((route) => {
    const of = (m: Map<string, number[]>, i: ImplName) => m.get(key(i, route)) ?? [];
    const bare = bareOf(impl);
    const withBare = impl !== bare && impls.includes(bare);
    return [
      IMPLS[impl].label,
      route,
      spread(of(results, impl)),
      aboveBare(of(results, impl), withBare ? of(results, bare) : []),
      spread(of(outsideGc, impl)),
      aboveBare(of(outsideGc, impl), withBare ? of(outsideGc, bare) : []),
      spread(of(steady, impl)),
      aboveBare(of(steady, impl), withBare ? of(steady, bare) : []),
    ];
  }),
);
const load1 = loadavg();
const loads = (l: number[]) => l.map((x) => fmt(x, 2)).join(' ');
const report = [
  '## CPU instructions per session request (callgrind)',
  '',
  `\`npx tsx bench/session-instructions.ts --impls ${impls.join(',')} --requests ${requests} --warmup ${warmup} ` +
    `--rounds ${rounds} --connections ${connections}${values.tsx ? ' --tsx' : ''}\`, node ${process.version}; ` +
    `load average (1, 5, 15 min) ${loads(load0)} before, ${loads(load1)} after (instruction counts depend on it far less than CPU time; the garbage collector’s share still moves). ` +
    `Median (min–max) over ${rounds} rounds of ${requests} requests, each after ${warmup} uninstrumented warm-up requests ` +
    `(${2 * warmup} per route before the first); ` +
    '"above bare": the median minus that of the bare server of the same framework (Express, Fastify, node:http or Hono), in brackets the widest that difference can be given both spreads. ' +
    'User-space instructions of the server process (JIT code, V8, Node, libuv, OpenSSL), not the kernel’s. ' +
    '"Outside the GC": the same less what V8\'s garbage collector ran (by function name, see GC_FUNCTION); ' +
    'it spreads less, since a major collection falls into one round and not the next. ' +
    '"Outside the GC and the compilers": less V8\'s compilers and deoptimiser too (COMPILER_FUNCTION), what a request costs once its code is compiled.',
  '',
  table(
    [
      'server',
      'route',
      'instructions / request',
      'above bare (same framework)',
      'outside the GC / request',
      'outside the GC, above bare',
      'outside the GC and compilers / request',
      'outside the GC and compilers, above bare',
    ],
    rows,
  ),
  '',
].join('\n');
console.log(`\n${report}`);
await writeFile(join(ROOT, 'bench/results/session-instructions.md'), report);
process.exit(0);
