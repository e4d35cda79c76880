import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './nodes.js';
import { fmt, table } from './results.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface CostLine {
  name: string;
  selfMs: number;
  /** Share of the non-idle time. */
  percent: number;
}

export interface ProfileSummary {
  file: string;
  busyMs: number;
  idleMs: number;
  topFunctions: CostLine[];
  byArea: CostLine[];
}

/** Where a function lives, coarse enough to say which layer costs what. */
function areaOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : 'native / V8 builtins';
  // The compiled probe (bench/lib/build.ts) lives under node_modules/.cache: name it by its source.
  // (node_modules may be a symlink, so the cache's real path need not start with ROOT.)
  const path = url.replace(/^file:\/\//, '').replace(/^.*node_modules\/\.cache\/shoal-bench\/\d+\//, `${ROOT}/`);
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return `npm: ${pkg[1]}`;
  if (path.startsWith('node:')) return `node: ${path.slice(5).split('/')[0]}`;
  if (path.startsWith(ROOT)) return path.slice(ROOT.length);
  return path;
}

/**
 * Self time per function and per area of the busiest .cpuprofile in `dir`: node writes one
 * per thread, and tsx's loader thread (idle after start-up) must not be mistaken for the server.
 */
export async function summarizeProfile(dir: string, top = 25, areas = 15): Promise<ProfileSummary> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0)
    throw new Error(`no .cpuprofile was written in ${dir} (did the server exit cleanly on SIGTERM?)`);
  const summaries = await Promise.all(files.map((f) => summarizeFile(join(dir, f), top, areas)));
  return summaries.sort((a, b) => b.busyMs - a.busyMs)[0] as ProfileSummary;
}

async function summarizeFile(file: string, top: number, areas: number): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const area = new Map<string, number>();
  let idle = 0;
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += us;
      return;
    }
    busy += us;
    const where = areaOf(url, functionName);
    const key = `${functionName || '(anonymous)'} — ${where}${url ? `:${lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    area.set(where, (area.get(where) ?? 0) + us);
  });
  const lines = (m: Map<string, number>, n: number): CostLine[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, selfMs: us / 1000, percent: busy > 0 ? (100 * us) / busy : 0 }));
  return { file, busyMs: busy / 1000, idleMs: idle / 1000, topFunctions: lines(fn, top), byArea: lines(area, areas) };
}

export function profileMarkdown(s: ProfileSummary): string {
  const rows = (list: CostLine[]) =>
    list.map((l) => [l.name.replace(/\|/g, '\\|'), fmt(l.selfMs), `${fmt(l.percent, 1)} %`]);
  return [
    `CPU profile of the shoal server during the run: busy ${fmt(s.busyMs)} ms, idle ${fmt(s.idleMs)} ms (\`${s.file}\`).`,
    '',
    'Self time by area:',
    '',
    table(['area', 'self ms', 'share of busy'], rows(s.byArea)),
    '',
    'Top functions by self time:',
    '',
    table(['function — location', 'self ms', 'share of busy'], rows(s.topFunctions)),
  ].join('\n');
}
