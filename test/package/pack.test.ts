import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/processes.js';

/** What `npm pack --json` says about the tarball it would write. */
interface PackReport {
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: Array<{ path: string; size: number }>;
}

/** Bounds that catch a stray directory (tests, sources, a build cache) landing in the package. */
const MAX_TARBALL_BYTES = 800_000;
const MAX_UNPACKED_BYTES = 3_000_000;

let pack: PackReport;
let paths: Set<string>;

beforeAll(async () => {
  // Not --ignore-scripts: `prepare` must build dist/ from a clean slate, as it does on a git install.
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--no-audit', '--no-fund'], {
    cwd: ROOT,
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  // The build's own output may come first; the report is the JSON array that ends stdout.
  const start = stdout.search(/^\[/m);
  expect(start, `no JSON report in npm pack's output:\n${stdout.slice(0, 2000)}`).toBeGreaterThanOrEqual(0);
  const reports = JSON.parse(stdout.slice(start)) as PackReport[];
  expect(reports).toHaveLength(1);
  pack = reports[0] as PackReport;
  paths = new Set(pack.files.map((f) => f.path));
}, 240_000);

describe('npm pack', () => {
  it('ships the compiled library, the bin, LICENSE and README', () => {
    for (const p of ['package.json', 'LICENSE', 'README.md', 'bin/shoal.js', 'dist/index.js', 'dist/cli/main.js']) {
      expect(paths, p).toContain(p);
    }
  });

  it('ships every file the exports map and bin name', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, string | Record<string, string>>;
      bin: Record<string, string>;
    };
    const targets = [
      ...Object.values(manifest.bin),
      ...Object.values(manifest.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t))),
    ].map((t) => t.replace(/^\.\//, ''));
    expect(targets.length).toBeGreaterThan(2);
    for (const t of targets) {
      if (t.includes('*')) {
        const [before = '', after = ''] = t.split('*');
        expect(
          [...paths].some((p) => p.startsWith(before) && p.endsWith(after)),
          t,
        ).toBe(true);
      } else {
        expect(paths, t).toContain(t);
      }
    }
  });

  it('leaves sources, tests, examples and local state out', () => {
    const stray = [...paths].filter((p) =>
      /^(src|test|examples|bench|deploy|docs|node_modules|\.shoal|\.ci|coverage|test-results)\//.test(p),
    );
    expect(stray).toEqual([]);
    expect([...paths].filter((p) => /\.test\.|\.tsbuildinfo$/.test(p))).toEqual([]);
  });

  it('ships no source map that points at files the package lacks', () => {
    const maps = [...paths].filter((p) => p.endsWith('.map'));
    for (const p of maps) {
      const map = JSON.parse(readFileSync(join(ROOT, p), 'utf8')) as { sources: string[]; sourcesContent?: unknown[] };
      const carried = map.sourcesContent?.filter((s) => typeof s === 'string').length ?? 0;
      // Each source is either embedded in the map or shipped beside it.
      const shipped = map.sources.filter((s) => paths.has(join(p, '..', s)));
      expect(carried + shipped.length, `${p} → ${map.sources.join(', ')}`).toBeGreaterThanOrEqual(map.sources.length);
    }
  });

  it(`stays under ${MAX_TARBALL_BYTES / 1e6} MB packed and ${MAX_UNPACKED_BYTES / 1e6} MB unpacked`, () => {
    console.log(`npm pack: ${pack.entryCount} files, ${pack.size} bytes packed, ${pack.unpackedSize} unpacked`);
    expect(pack.size).toBeLessThan(MAX_TARBALL_BYTES);
    expect(pack.unpackedSize).toBeLessThan(MAX_UNPACKED_BYTES);
  });
});
