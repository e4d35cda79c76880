import { rmSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';
import { ROOT } from './nodes.js';

/**
 * Where the compiled probe goes. Inside node_modules so bare imports (express, ioredis)
 * resolve by walking up, and git ignores it; one directory per process so concurrent
 * benchmark runs never rebuild under each other's servers.
 */
const BUILD_DIR = join(ROOT, 'node_modules', '.cache', 'shoal-bench', String(process.pid));

// bench/peers holds TypeScript peers over src/; its .mjs files run as they are and are copied
// beside them, as the TypeScript peers import the shared ones (peer-args.mjs, express-base.mjs).
const SOURCES = ['src', 'examples/probe', 'bench/peers'];

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.mjs') || (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))) yield path;
  }
}

/**
 * Compiles the probe and src/ to plain JavaScript (type-stripping only, like `tsc` emits)
 * and returns the server script's path. Shoal is measured as it runs in production:
 * under tsx every function gets a keepNames `__name()` wrapper, a per-request cost on
 * hot closures that the plain-JS peers do not pay.
 */
export async function buildProbe(): Promise<string> {
  built ??= build();
  return built;
}

let built: Promise<string> | undefined;

async function build(): Promise<string> {
  rmSync(BUILD_DIR, { recursive: true, force: true });
  process.once('exit', () => rmSync(BUILD_DIR, { recursive: true, force: true }));
  for (const source of SOURCES) {
    for await (const file of sourceFiles(join(ROOT, source))) {
      const out = join(BUILD_DIR, relative(ROOT, file)).replace(/\.ts$/, '.js');
      await mkdir(dirname(out), { recursive: true });
      if (file.endsWith('.mjs')) {
        await copyFile(file, out);
        continue;
      }
      const { outputText } = ts.transpileModule(await readFile(file, 'utf8'), {
        fileName: file,
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.ESNext,
          verbatimModuleSyntax: true,
        },
      });
      await writeFile(out, outputText);
    }
  }
  // Package scopes stop at node_modules: without this the .js files would load as CommonJS. The probe
  // imports the package by name ('shoal', 'shoal/express'): the build names itself "shoal" and maps
  // those names to its compiled sources, as tsconfig.json's paths do for the TypeScript.
  await writeFile(
    join(BUILD_DIR, 'package.json'),
    `${JSON.stringify({ name: 'shoal', type: 'module', private: true, exports: await compiledExports() }, null, 2)}\n`,
  );
  return join(BUILD_DIR, 'examples', 'probe', 'server.js');
}

async function compiledExports(): Promise<Record<string, string>> {
  const tsconfig = JSON.parse(await readFile(join(ROOT, 'tsconfig.json'), 'utf8')) as {
    compilerOptions: { paths: Record<string, [string]> };
  };
  const exports: Record<string, string> = {};
  for (const [name, [target]] of Object.entries(tsconfig.compilerOptions.paths)) {
    exports[name === 'shoal' ? '.' : `./${name.slice('shoal/'.length)}`] = target.replace(/\.ts$/, '.js');
  }
  return exports;
}

/** The shoal server script a scenario starts: compiled (default) or the TypeScript source through tsx. */
export async function shoalScript(options: { tsx: boolean }): Promise<string> {
  return options.tsx ? 'examples/probe/server.ts' : buildProbe();
}

/** A TypeScript peer under bench/peers (over src/): compiled with the probe, or through tsx. */
export async function peerScript(options: { tsx: boolean }, script: string): Promise<string> {
  if (options.tsx) return script;
  await buildProbe();
  return join(BUILD_DIR, script.replace(/\.ts$/, '.js'));
}

/**
 * The script a scenario-1 server runs: a TypeScript one (the probe, a peer over src/) compiled, or
 * through tsx with `--tsx`; a plain JavaScript peer as it is.
 */
export async function implScript(options: { tsx: boolean }, impl: { script: string }): Promise<string> {
  return impl.script.endsWith('.ts') ? peerScript(options, impl.script) : impl.script;
}

/** The express-session drop-in peer (bench/peers/drop-in-app.ts). */
export async function dropInScript(options: { tsx: boolean }): Promise<string> {
  return peerScript(options, 'bench/peers/drop-in-app.ts');
}
