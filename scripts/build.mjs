// Builds the package into a fresh directory, then swaps it in for dist/. A process that imports
// shoal from dist/ while a build runs (a dev cluster, a test beside the packing test) finds either
// the old build or the new one, never a directory half deleted.
//
// `--if-changed` builds only when dist/ was not built from the inputs as they are now: every build
// records a hash of what it compiled (STAMP, inside dist/ so it is swapped in with the build it
// describes), and a dist/ without a stamp, or with another hash, is rebuilt. The tests run the CLI
// from dist/ and rely on this to never run a stale build.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
const next = join(root, `dist.next-${process.pid}`);
const old = join(root, `dist.old-${process.pid}`);
const dist = join(root, 'dist');
/** Not shipped: package.json "files" leaves it out. */
const STAMP = '.build-inputs';

/**
 * Everything the build reads: the sources, the configs tsc reads, this script, the copied OpenAPI
 * document and package.json (its "type" decides the module format). The compiler's version too.
 */
function inputsHash() {
  const hash = createHash('sha256');
  const add = (file) =>
    hash
      .update(`${relative(root, file)}\0`)
      .update(readFileSync(file))
      .update('\0');
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else add(path);
    }
  };
  walk(join(root, 'src'));
  for (const file of ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'docs/server-api.openapi.json']) {
    add(join(root, file));
  }
  add(fileURLToPath(import.meta.url));
  hash.update(`typescript ${require('typescript/package.json').version}`);
  return hash.digest('hex');
}

function builtFrom() {
  try {
    return readFileSync(join(dist, STAMP), 'utf8').trim();
  } catch {
    return undefined;
  }
}

// Hashed before compiling: a source edited while tsc runs leaves a stamp that no longer matches,
// so the next --if-changed builds again rather than trusting a build of a half-old tree.
const inputs = inputsHash();
if (process.argv.includes('--if-changed') && builtFrom() === inputs) process.exit(0);

const compile = (...args) => execFileSync(process.execPath, [tsc, ...args], { cwd: root, stdio: 'inherit' });
try {
  compile('-p', 'tsconfig.build.json', '--outDir', next);
  compile('-p', 'src/cli/dashboard-ui', '--outDir', join(next, 'cli/dashboard-ui'));
  copyFileSync(join(root, 'src/cli/dashboard-ui/style.css'), join(next, 'cli/dashboard-ui/style.css'));
  copyFileSync(join(root, 'docs/server-api.openapi.json'), join(next, 'server-api.openapi.json'));
  writeFileSync(join(next, STAMP), `${inputs}\n`);
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
