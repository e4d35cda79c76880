import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface CodeBlock {
  /** Where it comes from, e.g. "docs/getting-started.md:42". */
  origin: string;
  /** The file it is compiled as: its `title="…"`, else one named after its origin. */
  file: string;
  code: string;
}

/**
 * Every ```ts block of README.md and docs/*.md, as a user would copy it. A block whose info string
 * says `fragment` (```ts fragment) is a piece of a larger program and is left out; every other block
 * must compile on its own (or with the titled blocks of its page it imports).
 */
export function typescriptBlocks(root: string): CodeBlock[] {
  const docs = [
    'README.md',
    ...readdirSync(join(root, 'docs')).flatMap((f) => (f.endsWith('.md') ? [`docs/${f}`] : [])),
  ];
  const blocks: CodeBlock[] = [];
  for (const doc of docs) {
    const text = readFileSync(join(root, doc), 'utf8');
    const fence = /^```(ts|typescript)([^\n]*)\n([\s\S]*?)^```\s*$/gm;
    for (const m of text.matchAll(fence)) {
      const info = m[2] ?? '';
      if (/\bfragment\b/.test(info)) continue;
      const line = text.slice(0, m.index).split('\n').length;
      const title = /title="([^"]+)"/.exec(info)?.[1];
      const page = basename(doc, '.md').toLowerCase();
      blocks.push({
        origin: `${doc}:${line}`,
        file: title ? `${page}/${title}` : `${page}/block-${line}.ts`,
        code: m[3] ?? '',
      });
    }
  }
  return blocks;
}
