import { readFile } from 'node:fs/promises';

/** The files the dashboard page loads from `<base>/assets/`; nothing else is served from there. */
const TYPES: Record<string, string> = {
  'main.js': 'text/javascript; charset=utf-8',
  'math.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

const UI = new URL('./dashboard-ui/', import.meta.url);
const loaded = new Map<string, Promise<Buffer>>();

/** The asset's body and content type, or undefined when the name is not one of the dashboard's files. */
export async function dashboardAsset(name: string): Promise<{ body: Buffer; type: string } | undefined> {
  const type = TYPES[name];
  if (!type) return undefined;
  let body = loaded.get(name);
  if (!body) {
    body = load(name);
    loaded.set(name, body);
    body.catch(() => loaded.delete(name));
  }
  return { body: await body, type };
}

/**
 * The published package ships the page script compiled by `npm run build` (dist/cli/dashboard-ui/*.js).
 * Run from a checkout, only the TypeScript source is there: it is compiled on first request with esbuild,
 * a development dependency of the repo (no bundling: the browser loads the modules as they are).
 */
async function load(name: string): Promise<Buffer> {
  try {
    return await readFile(new URL(name, UI));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !name.endsWith('.js')) throw err;
  }
  const source = await readFile(new URL(name.replace(/\.js$/, '.ts'), UI), 'utf8');
  const esbuild = await import('esbuild');
  const out = await esbuild.transform(source, { loader: 'ts', format: 'esm', target: 'es2022' });
  return Buffer.from(out.code);
}
