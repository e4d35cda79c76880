/**
 * Where a server's instructions go, function by function, from a dump kept by
 * `bench/session-instructions.ts --keep DIR --perf-map` (which runs node with --perf-basic-prof, so
 * JIT code can be named). Given a second dump, the difference: what one server or build spends that
 * the other does not.
 *
 * `npx tsx bench/instructions-by-function.ts DIR/cg.<pid>.<n> [OTHER/cg.<pid>.<n>] [--requests 1000]
 * [--top 40] [--inclusive] [--match REGEX]`
 *
 * Figures are instructions per request (the dump's totals over `--requests`): self cost by default,
 * with `--inclusive` the cost of each function with everything it called. JIT code is named from node's
 * /tmp/perf-<pid>.map (`*` optimised, `^` baseline, `~` interpreted); V8's and node's own functions by
 * their symbols. Inlined functions count in their caller.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { positiveFlag } from './lib/options.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    requests: { type: 'string', default: '1000' },
    top: { type: 'string', default: '40' },
    inclusive: { type: 'boolean', default: false },
    match: { type: 'string' },
  },
});
const [first, second] = positionals;
if (!first) throw new Error('give a callgrind dump kept by bench/session-instructions.ts --keep DIR --perf-map');
const requests = positiveFlag(values, 'requests');
const top = positiveFlag(values, 'top');
const match = values.match ? new RegExp(values.match) : null;

interface JitCode {
  start: number;
  end: number;
  name: string;
}

/** node's perf map of the process that wrote the dump: address, size and name of each piece of JIT code. */
async function perfMap(dump: string): Promise<JitCode[]> {
  const pid = /^cg\.(\d+)\./.exec(basename(dump))?.[1];
  if (!pid) throw new Error(`${dump}: not a dump named cg.<pid>.<n>`);
  const text = await readFile(`/tmp/perf-${pid}.map`, 'utf8').catch(() => {
    throw new Error(`/tmp/perf-${pid}.map is missing: keep the dumps with --perf-map`);
  });
  const code = text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [start = '0', size = '0', ...name] = line.split(' ');
      const at = Number.parseInt(start, 16);
      return { start: at, end: at + Number.parseInt(size, 16), name: name.join(' ') };
    });
  return code.sort((a, b) => a.start - b.start);
}

/** The JIT code an address falls in (the last entry starting at or before it), by binary search. */
function jitName(code: JitCode[], address: number): string {
  let lo = 0;
  let hi = code.length - 1;
  let found: JitCode | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = code[mid] as JitCode;
    if (c.start <= address) {
      found = c;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  // The bench's build directory differs per run: names without it compare across dumps.
  return found && address < found.end
    ? `JS ${found.name.replace(/file:\/\/\S*?\/shoal-bench\/\d+\//, '').replace(/\S*\/node_modules\//, '')}`
    : 'JS (unnamed)';
}

/** Instructions per request by function name, from callgrind_annotate. */
async function costs(dump: string): Promise<Map<string, number>> {
  const code = await perfMap(dump);
  const args = ['--threshold=100', ...(values.inclusive ? ['--inclusive=yes'] : []), dump];
  const { stdout } = await promisify(execFile)('callgrind_annotate', args, { maxBuffer: 256 * 1024 * 1024 });
  const out = new Map<string, number>();
  for (const line of stdout.split('\n')) {
    const m = /^\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$/.exec(line);
    if (!m?.[1] || !m[2] || m[2].startsWith('PROGRAM TOTALS')) continue;
    const address = /^\?\?\?:0x([0-9a-f]+)/.exec(m[2])?.[1];
    const name = address
      ? jitName(code, Number.parseInt(address, 16))
      : m[2]
          .replace(/^\?\?\?:/, '')
          .replace(/\(.*$/, '')
          .slice(0, 120);
    out.set(name, (out.get(name) ?? 0) + Number(m[1].replaceAll(',', '')) / requests);
  }
  return out;
}

const a = await costs(first);
const b = second ? await costs(second) : new Map<string, number>();
const rows = [...new Set([...a.keys(), ...b.keys()])]
  .filter((name) => !match || match.test(name))
  .map((name) => ({ name, a: a.get(name) ?? 0, b: b.get(name) ?? 0 }))
  .sort((x, y) => Math.abs(y.a - y.b) - Math.abs(x.a - x.b));
const n = (x: number) => Math.round(x).toLocaleString('en-US').padStart(10);
console.log(
  second
    ? `${values.inclusive ? 'inclusive' : 'self'} instructions per request: difference, ${basename(first)}, ${basename(second)}`
    : `${values.inclusive ? 'inclusive' : 'self'} instructions per request, ${basename(first)}`,
);
for (const r of rows.slice(0, top))
  console.log(second ? `${n(r.a - r.b)} ${n(r.a)} ${n(r.b)}  ${r.name}` : `${n(r.a)}  ${r.name}`);
