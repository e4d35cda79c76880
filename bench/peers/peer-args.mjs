/**
 * What every HTTP peer reads at start, in plain JavaScript so the .mjs peers run under plain
 * node and the TypeScript peers import it from their build directory (bench/lib/build.ts copies it).
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

/** --port (default 3000) and --host (default 127.0.0.1), and the node id the X-Shoal-Node header names. */
export function peerArgs() {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: '3000' }, host: { type: 'string', default: '127.0.0.1' } },
  });
  return {
    port: Number(values.port),
    host: values.host,
    node: process.env.SHOAL_NODE_ID ?? `${hostname()}:${process.pid}`,
  };
}
