import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/processes.js';

const run = promisify(execFile);

/** The version of a package installed in the repo, so the consumer's install is served from npm's cache. */
function installed(name: string): string {
  return readVersion(join(ROOT, 'node_modules', name));
}

/** What `npm pack --json` says about the tarball it wrote. */
export interface PackReport {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: Array<{ path: string; size: number }>;
}

export interface ConsumerProject {
  dir: string;
  tarball: string;
  /** The tarball's contents, as npm reported them. */
  pack: PackReport;
  /** Runs a command in the project; rejects with its output when it fails. */
  exec(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string>;
}

/**
 * Builds shoal, packs it as `npm publish` would, and installs the tarball into a new project
 * outside the repo, with what a user installs beside it (README, docs/getting-started.md).
 */
export async function createConsumerProject(extraPackages: string[] = []): Promise<ConsumerProject> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-consumer-'));
  const exec = async (file: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    try {
      const { stdout, stderr } = await run(file, args, {
        cwd: dir,
        env: { ...process.env, ...env },
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout + stderr;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
  };
  // A build of the sources as they are. test/global-setup.ts made one for the run; this checks again
  // (a tenth of a second) and compiles only if dist/ came from other sources.
  await run(process.execPath, ['scripts/build.mjs', '--if-changed'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  // The build is current: pack without running it again.
  const packed = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT });
  const pack = (JSON.parse(packed.stdout) as PackReport[])[0];
  if (!pack) throw new Error(`npm pack reported no tarball:\n${packed.stdout}`);
  const tarball = join(dir, pack.filename);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'my-app', private: true, type: 'module' }, null, 2));
  const packages = [
    'express',
    'ws',
    'typescript',
    'tsx',
    'esbuild',
    '@types/express',
    '@types/node',
    '@types/ws',
    ...extraPackages,
  ].map((name) => `${name}@${installed(name)}`);
  // Install scripts are skipped: the one that matters, better-sqlite3's native build, takes minutes on
  // two cores; the repo's build of the same version for the same Node is copied in below instead.
  await exec('npm', [
    'install',
    '--prefer-offline',
    '--no-audit',
    '--no-fund',
    '--ignore-scripts',
    tarball,
    ...packages,
  ]);
  const addon = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
  if (installed('better-sqlite3') !== readVersion(join(dir, 'node_modules/better-sqlite3'))) {
    await exec('npm', ['rebuild', 'better-sqlite3']);
  } else if (!existsSync(join(dir, addon))) {
    mkdirSync(dirname(join(dir, addon)), { recursive: true });
    copyFileSync(join(ROOT, addon), join(dir, addon));
  }
  return { dir, tarball, pack, exec };
}

function readVersion(packageDir: string): string {
  return (JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')) as { version: string }).version;
}
