/**
 * `node bench/lib/heap-diff.mjs before.heapsnapshot after.heapsnapshot [rows]`: what the second heap
 * snapshot holds that the first does not, by V8's node type and constructor name (strings, numbers
 * and code each counted as one kind): bytes and objects, largest first.
 */
import { readFileSync } from 'node:fs';

function aggregate(file) {
  const { snapshot, nodes, strings } = JSON.parse(readFileSync(file, 'utf8'));
  const fields = snapshot.meta.node_fields;
  const types = snapshot.meta.node_types[0];
  const [type, name, size] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const kinds = new Map();
  for (let i = 0; i < nodes.length; i += fields.length) {
    const t = types[nodes[i + type]];
    const label = t.endsWith('string')
      ? '(string)'
      : t === 'number'
        ? '(number)'
        : t === 'code'
          ? '(code)'
          : strings[nodes[i + name]];
    const key = `${t} ${label}`.slice(0, 100);
    const kind = kinds.get(key) ?? { count: 0, bytes: 0 };
    kind.count += 1;
    kind.bytes += nodes[i + size];
    kinds.set(key, kind);
  }
  return kinds;
}

const [beforeFile, afterFile, rows = '40'] = process.argv.slice(2);
if (!beforeFile || !afterFile)
  throw new Error('usage: node bench/lib/heap-diff.mjs before.heapsnapshot after.heapsnapshot [rows]');
const before = aggregate(beforeFile);
const after = aggregate(afterFile);
const diff = [];
for (const [key, a] of after) {
  const b = before.get(key) ?? { count: 0, bytes: 0 };
  diff.push([key, a.bytes - b.bytes, a.count - b.count]);
}
for (const [key, b] of before) if (!after.has(key)) diff.push([key, -b.bytes, -b.count]);
diff.sort((x, y) => y[1] - x[1]);
console.log('    bytes  objects  kind');
for (const [key, bytes, count] of diff.slice(0, Number(rows))) {
  console.log(`${String(bytes).padStart(9)} ${String(count).padStart(8)}  ${key}`);
}
