import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/processes.js';

/**
 * The import rule of src/ (docs/architecture.md, "Layers"): a folder imports only from the
 * folders listed for it, and no chain of imports between files comes back to where it started.
 * `import type` counts too: a type from a layer above is still a dependency on it.
 */
const LAYERS: Record<string, readonly string[]> = {
  core: [],
  protocol: [],
  stores: ['core'],
  bus: ['core'],
  session: ['core', 'stores'],
  http: ['core', 'stores', 'session'],
  realtime: ['core', 'protocol', 'stores', 'bus', 'session'],
  client: ['core', 'protocol'],
  app: ['core', 'stores', 'bus', 'session', 'http', 'realtime'],
  cli: ['core', 'protocol', 'stores', 'bus', 'session', 'http', 'realtime', 'app'],
  // src/index.ts: the package's front door re-exports every library layer, never the CLI.
  '.': ['core', 'protocol', 'stores', 'bus', 'session', 'http', 'realtime', 'client', 'app'],
};

const SRC = join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative specifiers of every static import and re-export of a file, resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\b[^'";]*?from\s+'(\.[^']+)'/gm)].map((m) => m[1] ?? '');
  return specifiers.map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

/** The layer a file belongs to: its first folder under src/ ('.' for files directly in src/). */
function layerOf(file: string): string {
  const parts = relative(SRC, file).split('/');
  return parts.length > 1 ? (parts[0] ?? '.') : '.';
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('the import rule of src/', () => {
  it('knows every folder of src/', () => {
    const unknown = [...new Set(files.map(layerOf))].filter((layer) => !(layer in LAYERS));
    expect(unknown, 'add the new folder to LAYERS and to docs/architecture.md').toEqual([]);
  });

  it('no file imports from a layer it may not depend on', () => {
    const broken: string[] = [];
    for (const [file, imports] of graph) {
      const from = layerOf(file);
      for (const target of imports) {
        const to = layerOf(target);
        if (to !== from && !LAYERS[from]?.includes(to)) {
          broken.push(`${relative(ROOT, file)} → ${relative(ROOT, target)} (${from} may not import ${to})`);
        }
      }
    }
    expect(broken).toEqual([]);
  });

  it('every relative import names a file that exists', () => {
    const missing = [...graph].flatMap(([file, imports]) =>
      imports.filter((t) => !graph.has(t)).map((t) => `${relative(ROOT, file)} → ${relative(ROOT, t)}`),
    );
    expect(missing).toEqual([]);
  });

  it('has no import cycle between files', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const path: string[] = [];
    const visit = (file: string) => {
      state.set(file, 'open');
      path.push(file);
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'open') {
          cycles.push([...path.slice(path.indexOf(next)), next].map((f) => relative(SRC, f)).join(' → '));
        } else if (!state.has(next) && graph.has(next)) visit(next);
      }
      path.pop();
      state.set(file, 'done');
    };
    for (const file of files) if (!state.has(file)) visit(file);
    expect(cycles).toEqual([]);
  });
});
