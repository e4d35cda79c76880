/**
 * Starts one shoal gateway the way `shoal gateway --app <module>` does, with the `--port`
 * the bench harness appends: `node bench/peers/shoal-gateway.mjs --port <p>`.
 * BENCH_SHOAL_MAIN is the CLI entry (compiled JavaScript, or src/cli/main.ts under
 * `--import tsx`), BENCH_SHOAL_APP the app module whose realtime section it serves.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const main = process.env.BENCH_SHOAL_MAIN;
const app = process.env.BENCH_SHOAL_APP;
if (!main || !app) {
  console.error('shoal-gateway.mjs: set BENCH_SHOAL_MAIN and BENCH_SHOAL_APP');
  process.exit(2);
}
process.argv.splice(2, 0, 'gateway', '--app', app);
await import(pathToFileURL(resolve(main)).href);
