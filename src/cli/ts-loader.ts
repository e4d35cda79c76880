import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/errors.js';

const TYPESCRIPT = /\.[cm]?tsx?$/i;

let registered = false;

/**
 * Makes `import()` of a TypeScript module work before the CLI loads one (an app module, a
 * shoal.config.ts). Node 20 cannot, so the CLI registers tsx's ESM loader, resolved from the
 * user's project (the module's directory, then the working directory), never from shoal's own
 * dependencies. Does nothing for .js/.mjs, or when a loader already runs: the CLI itself is then
 * TypeScript (started through tsx), or Node strips types on its own.
 */
export async function ensureTypeScript(path: string, cwd = process.cwd()): Promise<void> {
  // This file as .ts means a loader (tsx, a test runner) compiled it and will compile the app too.
  if (registered || !TYPESCRIPT.test(path) || import.meta.url.endsWith('.ts')) return;
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  const api = resolveFrom([dirname(file), cwd]);
  if (!api) {
    // Newer Node strips types itself; tsx is still preferred above, as it also maps ./x.js to ./x.ts.
    if ((process.features as { typescript?: string | false }).typescript) return;
    throw new ConfigError(
      `${path} is TypeScript, which Node ${process.versions.node} cannot load on its own: install tsx (npm i -D tsx), or compile it to .js`,
    );
  }
  // Both hooks: a .ts file in a CommonJS package ("type": "commonjs", or no "type") is compiled to
  // CommonJS and loaded by require(), which only tsx's CommonJS hook teaches about TypeScript.
  for (const entry of [api.cjs, api.esm]) {
    const { register } = (await import(pathToFileURL(entry).href)) as { register?: () => unknown };
    if (typeof register !== 'function') {
      throw new ConfigError(`the tsx found at ${entry} has no register(): update it (npm i -D tsx@latest)`);
    }
    register();
  }
  registered = true;
}

/**
 * The default export of a module the user wrote. TypeScript compiled to CommonJS turns
 * `export default x` into `exports.default = x` beside `__esModule`, which import() hands back
 * one level down: unwrap it, so an app reads the same in an ESM and in a CommonJS package.
 */
export async function importDefault(url: string): Promise<unknown> {
  const value = ((await import(url)) as { default?: unknown }).default;
  if (typeof value === 'object' && value !== null && (value as { __esModule?: unknown }).__esModule === true) {
    return (value as { default?: unknown }).default;
  }
  return value;
}

/**
 * The ESM entries of `tsx/esm/api` and `tsx/cjs/api` in the first of `dirs` whose node_modules has
 * tsx. A require() rooted there walks up node_modules as the user's own imports do; it finds the
 * package, and its exports map gives the `import` entries (the `require` ones register loaders that
 * cannot resolve).
 */
function resolveFrom(dirs: string[]): { esm: string; cjs: string } | undefined {
  for (const dir of dirs) {
    let manifest: string;
    try {
      manifest = createRequire(join(dir, 'noop.js')).resolve('tsx/package.json');
    } catch {
      continue;
    }
    const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: Record<string, unknown> };
    const esm = importEntry(pkg.exports?.['./esm/api']);
    const cjs = importEntry(pkg.exports?.['./cjs/api']);
    if (esm && cjs) return { esm: join(dirname(manifest), esm), cjs: join(dirname(manifest), cjs) };
  }
  return undefined;
}

/** `{ import: { default: './x.mjs' } }`, `{ import: './x.mjs' }` or './x.mjs' → './x.mjs'. */
function importEntry(target: unknown): string | undefined {
  if (typeof target === 'string') return target;
  if (typeof target !== 'object' || target === null) return undefined;
  const t = target as Record<string, unknown>;
  return importEntry(t.import ?? t.default);
}
