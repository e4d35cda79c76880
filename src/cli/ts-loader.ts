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
  const api = resolveFrom([dirname(file), cwd], 'tsx/esm/api');
  if (!api) {
    // Newer Node strips types itself; tsx is still preferred above, as it also maps ./x.js to ./x.ts.
    if ((process.features as { typescript?: string | false }).typescript) return;
    throw new ConfigError(
      `${path} is TypeScript, which Node ${process.versions.node} cannot load on its own: install tsx (npm i -D tsx), or compile it to .js`,
    );
  }
  const { register } = (await import(pathToFileURL(api).href)) as { register?: () => unknown };
  if (typeof register !== 'function') {
    throw new ConfigError(`the tsx found at ${api} has no register(): update it (npm i -D tsx@latest)`);
  }
  register();
  registered = true;
}

function resolveFrom(dirs: string[], specifier: string): string | undefined {
  for (const dir of dirs) {
    try {
      // A require() rooted in that directory walks up its node_modules, as the user's own imports do.
      return createRequire(join(dir, 'noop.js')).resolve(specifier);
    } catch {}
  }
  return undefined;
}
