import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * Tests run the CLI, and the library their child processes import, from dist/ (see CLI in
 * helpers/processes.ts). Before the run, and before each rerun in watch mode, dist/ is rebuilt when
 * it was not built from the sources as they are: scripts/build.mjs --if-changed compares a hash of
 * the build's inputs with the one recorded in dist/, so a stale build is never the one tested. When
 * nothing changed the check takes a tenth of a second.
 */
function build(): void {
  execFileSync(process.execPath, ['scripts/build.mjs', '--if-changed'], { cwd: ROOT, stdio: 'inherit' });
}

export default function setup(project: TestProject): void {
  build();
  project.onTestsRerun(() => build());
}
