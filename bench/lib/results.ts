import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';

/** What every scenario hands back: machine-readable data plus the Markdown a human reads. */
export interface ScenarioReport<T = unknown> {
  scenario: string;
  title: string;
  quick: boolean;
  startedAt: string;
  finishedAt: string;
  environment: Environment;
  /** Correctness problems (lost shoal writes, non-2xx under load…); any makes the run fail. */
  problems: string[];
  data: T;
  markdown: string;
}

export interface Environment {
  node: string;
  platform: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  /** 1-minute load average when the scenario started: a busy machine skews every number. */
  loadAvg1: number;
}

export function environment(): Environment {
  const list = cpus();
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAvg1: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

const LATEST_HEADER = `# shoal benchmarks — latest results

Written by \`npm run bench\` (one section per scenario; a scenario run on its own replaces only its section).
Numbers come from one shared machine: compare rows within a section, not across machines.
`;

/**
 * Writes `<dir>/<scenario>.json` and `.md`, replaces (or appends) the scenario's section of
 * `latest.md`, and its entry of `latest.json` (every scenario's last report, by name).
 */
export async function writeResults(dir: string, report: ScenarioReport): Promise<{ json: string; md: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, `${report.scenario}.json`);
  const md = join(dir, `${report.scenario}.md`);
  const section = renderSection(report);
  await atomicWrite(json, `${JSON.stringify(report, null, 2)}\n`);
  await atomicWrite(md, `${section}\n`);
  await updateLatest(join(dir, 'latest.md'), report.scenario, section);
  await updateLatestJson(join(dir, 'latest.json'), report);
  return { json, md };
}

async function updateLatestJson(path: string, report: ScenarioReport): Promise<void> {
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    // Missing or damaged: start over rather than fail a finished run.
  }
  all[report.scenario] = report;
  await atomicWrite(
    path,
    `${JSON.stringify(all, null, 2)}
`,
  );
}

export function renderSection(report: ScenarioReport): string {
  const env = report.environment;
  const lines = [
    `## ${report.title}${report.quick ? ' (--quick smoke run: not a measurement)' : ''}`,
    '',
    `Run ${report.finishedAt} · node ${env.node} · ${env.cpus}× ${env.cpuModel} · load average at start ${env.loadAvg1}`,
    '',
    report.markdown.trim(),
  ];
  if (report.problems.length > 0) lines.push('', '**Problems:**', '', ...report.problems.map((p) => `- ${p}`));
  return lines.join('\n');
}

async function updateLatest(path: string, scenario: string, section: string): Promise<void> {
  const begin = `<!-- bench:${scenario} -->`;
  const end = `<!-- /bench:${scenario} -->`;
  const block = `${begin}\n${section}\n${end}`;
  let text = await readFile(path, 'utf8').catch(() => LATEST_HEADER);
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from >= 0 && to > from) text = text.slice(0, from) + block + text.slice(to + end.length);
  else text = `${text.trimEnd()}\n\n${block}\n`;
  await atomicWrite(path, text);
}

/** Readers (and a concurrent scenario) never see a half-written file. */
async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/** A Markdown table. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
