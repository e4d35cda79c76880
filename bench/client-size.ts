/**
 * `npx tsx bench/client-size.ts`: what the browser SDK costs a page. Bundles
 * src/client/index.ts the way an app's bundler would (ESM, browser platform,
 * minified, everything inlined) and prints raw and gzip sizes, plus the
 * biggest inputs. Fails if anything Node-only is pulled in: esbuild cannot
 * resolve `node:` modules for the browser platform.
 */
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const entry = fileURLToPath(new URL('../src/client/index.ts', import.meta.url));
const result = await build({
  entryPoints: [entry],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  metafile: true,
  logLevel: 'silent',
});

const code = result.outputFiles[0]?.contents;
if (!code) throw new Error('esbuild produced no output');
const gzip = gzipSync(code, { level: 9 }).length;
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

console.log(`shoal/client bundle (esbuild, ESM, browser, minified, es2022)`);
console.log(`  raw:  ${code.length} bytes (${kib(code.length)})`);
console.log(`  gzip: ${gzip} bytes (${kib(gzip)})`);
const output = Object.values(result.metafile.outputs)[0];
if (output) {
  console.log('  inputs (bytes in the bundle):');
  const inputs = Object.entries(output.inputs).sort((a, b) => b[1].bytesInOutput - a[1].bytesInOutput);
  for (const [file, info] of inputs) console.log(`    ${String(info.bytesInOutput).padStart(6)}  ${file}`);
}
