// Builds the package into a fresh directory, then swaps it in for dist/. A process that imports
// shoal from dist/ while a build runs (a dev cluster, a test beside the packing test) finds either
// the old build or the new one, never a directory half deleted.
import { execFileSync } from 'node:child_process';
import { copyFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const next = join(root, `dist.next-${process.pid}`);
const old = join(root, `dist.old-${process.pid}`);
const dist = join(root, 'dist');

const compile = (...args) => execFileSync(process.execPath, [tsc, ...args], { cwd: root, stdio: 'inherit' });
try {
  compile('-p', 'tsconfig.build.json', '--outDir', next);
  compile('-p', 'src/cli/dashboard-ui', '--outDir', join(next, 'cli/dashboard-ui'));
  copyFileSync(join(root, 'src/cli/dashboard-ui/style.css'), join(next, 'cli/dashboard-ui/style.css'));
  copyFileSync(join(root, 'docs/server-api.openapi.json'), join(next, 'server-api.openapi.json'));
} catch (err) {
  rmSync(next, { recursive: true, force: true });
  process.exitCode = 1;
  throw err;
}
try {
  renameSync(dist, old);
} catch (err) {
  if (err.code !== 'ENOENT') throw err;
}
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
