import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Esbuild from 'esbuild';

export interface Asset {
  body: Buffer;
  type: string;
}

export interface Assets {
  /** URL path (content-hashed, so browsers may cache it forever) → file. */
  files: Map<string, Asset>;
  /** The page script's URL. */
  pageScript: string;
  stylesheet: string;
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * Bundles the browser SDK (shoal/client) and the page script with
 * esbuild when the node starts, and keeps a copy under `.shoal/cache/demo/`
 * (never committed). The SDK is its own file, as an app would ship it; the
 * page script imports it by its hashed URL.
 */
export async function buildAssets(cacheDir = '.shoal/cache/demo'): Promise<Assets> {
  const esbuild = (await import('esbuild').catch((err: unknown) => {
    throw new Error('the demo bundles its browser code with esbuild: npm install --save-dev esbuild', { cause: err });
  })) as typeof Esbuild;
  const common = {
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
  } as const;
  const files = new Map<string, Asset>();
  const add = (name: string, ext: string, body: Buffer | Uint8Array, type: string) => {
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
    const file = `${name}.${hash}.${ext}`;
    files.set(`/assets/${file}`, { body: Buffer.from(body), type });
    keep(cacheDir, file, body);
    return `/assets/${file}`;
  };

  // The SDK as the package exports it: an app would bundle 'shoal/client' the same way.
  const sdk = await esbuild.build({
    ...common,
    stdin: { contents: "export * from 'shoal/client';", resolveDir: here('.'), loader: 'ts' },
  });
  const sdkUrl = add('shoal-client', 'js', firstOutput(sdk), 'text/javascript; charset=utf-8');

  const page = await esbuild.build({
    ...common,
    entryPoints: [here('./browser/page.ts')],
    plugins: [
      {
        // The page imports the SDK from source for its types; in the browser it loads the SDK bundle.
        name: 'sdk-as-file',
        setup(build) {
          build.onResolve({ filter: /^shoal\/client$/ }, () => ({ path: sdkUrl, external: true }));
        },
      },
    ],
  });
  const pageScript = add('demo', 'js', firstOutput(page), 'text/javascript; charset=utf-8');
  const stylesheet = add('demo', 'css', readFileSync(here('./public/demo.css')), 'text/css; charset=utf-8');
  prune(cacheDir, new Set([...files.keys()].map((url) => url.slice('/assets/'.length))));
  return { files, pageScript, stylesheet };
}

function firstOutput(result: Esbuild.BuildResult<{ write: false }>): Uint8Array {
  const out = result.outputFiles[0];
  if (!out) throw new Error('esbuild produced no output for the demo’s browser code');
  return out.contents;
}

/** Several web nodes start at once: write to a temporary name, then rename (atomic on one filesystem). */
function keep(dir: string, file: string, body: Uint8Array): void {
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `.${file}.${process.pid}.tmp`);
    writeFileSync(tmp, body);
    renameSync(tmp, join(dir, file));
  } catch {
    // The cache is a convenience for inspecting the bundle; the node serves from memory either way.
  }
}

/** Bundles of earlier versions are never served again (nodes serve from memory): keep the cache small. */
function prune(dir: string, keep: Set<string>): void {
  try {
    for (const name of readdirSync(dir)) {
      if (!keep.has(name) && !name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
    }
  } catch {
    // Best effort, like the cache itself.
  }
}
