/**
 * Child process for test/unit/sqlite-multiprocess.test.ts. Args: <db path> <session id> <worker index> <rounds>.
 * Prints "ready", waits for "go" on stdin (so every worker opens the fresh file at the same moment), then
 * creates the session (only one worker can win), runs <rounds> increments and <rounds> distinct-key commits,
 * and prints one JSON line with what it saw.
 */
import { createInterface } from 'node:readline';
import { sqliteStore } from '../../src/stores/sqlite.js';
import { sessionFixture } from './session-fixture.js';

const [path, id, worker, roundsArg] = process.argv.slice(2);
if (!path || !id || !worker || !roundsArg) throw new Error('usage: sqlite-worker <path> <id> <worker> <rounds>');
const rounds = Number(roundsArg);
const HOUR = 3_600_000;

process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === 'go') break;
lines.close();

const store = await sqliteStore({ path });
const created = await store.create({ ...sessionFixture(), id });
const counts: number[] = [];
const failures: string[] = [];
for (let i = 0; i < rounds; i++) {
  const options = { now: Date.now(), idleDeadline: Date.now() + HOUR };
  const inc = await store.commit(id, { incr: { n: 1 } }, options);
  if (inc.status === 'ok') counts.push(Number(inc.values.n));
  else failures.push(`incr: ${inc.status}`);
  const set = await store.commit(id, { set: { [`w${worker}-${i}`]: String(i) } }, options);
  if (set.status !== 'ok') failures.push(`set: ${set.status}`);
  // Like a server between requests: without an idle moment one process would re-take the write lock back to back.
  if (i % 5 === 4) await new Promise((r) => setTimeout(r, 1));
}
await store.close();
process.stdout.write(`${JSON.stringify({ created, counts, failures })}\n`);
