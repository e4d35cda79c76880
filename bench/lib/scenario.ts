import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BenchOptions } from './options.js';
import { parseBenchArgs } from './options.js';
import { environment, renderSection, type ScenarioReport, writeResults } from './results.js';

/** What a scenario computes; the harness adds timing, environment and file output. */
export interface ScenarioOutcome<T> {
  data: T;
  markdown: string;
  problems: string[];
}

export interface Scenario<T = unknown> {
  /** File stem of its results: bench/results/<name>.json|md. */
  name: string;
  title: string;
  run(options: BenchOptions, log: (line: string) => void): Promise<ScenarioOutcome<T>>;
}

const log = (line: string) => console.error(`[bench] ${line}`);

/** Runs one scenario, writes its results and returns the report (problems included, never thrown). */
export async function runScenario(scenario: Scenario, options: BenchOptions): Promise<ScenarioReport> {
  const startedAt = new Date().toISOString();
  const env = environment();
  log(`${scenario.name}: starting${options.quick ? ' (quick)' : ''}`);
  let outcome: ScenarioOutcome<unknown>;
  try {
    outcome = await scenario.run(options, (line) => log(`${scenario.name}: ${line}`));
  } catch (err) {
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    outcome = { data: null, markdown: '_The scenario failed before producing results._', problems: [message] };
  }
  const report: ScenarioReport = {
    scenario: scenario.name,
    title: scenario.title,
    quick: options.quick,
    startedAt,
    finishedAt: new Date().toISOString(),
    environment: env,
    ...outcome,
  };
  const files = await writeResults(options.resultsDir, report);
  log(`${scenario.name}: wrote ${files.json} and ${files.md}`);
  return report;
}

/** Command-line entry shared by every scenario file and bench/run.ts: exit 1 on any problem. */
export async function main(scenarios: Scenario[], argv = process.argv.slice(2)): Promise<never> {
  const { options, only } = parseBenchArgs(argv);
  const selected = only.length > 0 ? scenarios.filter((s) => only.includes(s.name)) : scenarios;
  if (selected.length === 0) throw new Error(`--only matched no scenario; known: ${scenarios.map((s) => s.name)}`);
  let failed = false;
  for (const scenario of selected) {
    const report = await runScenario(scenario, options);
    console.log(`\n${renderSection(report)}\n`);
    failed ||= report.problems.length > 0;
  }
  process.exit(failed ? 1 : 0);
}

/** True when `moduleUrl` is the script node was started with (not imported by run.ts). */
export function isMain(moduleUrl: string): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
