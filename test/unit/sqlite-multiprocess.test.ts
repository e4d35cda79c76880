import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { newSessionId } from '../../src/core/ids.js';
import { sqliteStore } from '../../src/stores/sqlite.js';

const WORKERS = 3;
const ROUNDS = 100;
const dir = join(tmpdir(), `shoal-sqlite-mp-${randomUUID()}`);
const path = join(dir, 'shoal.db');
const children: ChildProcessWithoutNullStreams[] = [];
const worker = fileURLToPath(new URL('../helpers/sqlite-worker.ts', import.meta.url));

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Report {
  created: boolean;
  counts: number[];
  failures: string[];
}

/** Starts a worker; resolves `ready` once it has loaded, `done` with its report when it exits. */
function start(index: number, id: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', worker, path, id, String(index), String(ROUNDS)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => {
    onReady = r;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.startsWith('ready\n')) onReady();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const done = new Promise<Report>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as Report);
      else reject(new Error(`worker ${index} exited with ${code ?? signal}: ${err || out}`));
    });
  });
  // A worker that dies before "ready" must not leave the test waiting for it.
  return { child, ready: Promise.race([ready, done.then(() => undefined)]), done };
}

it(`${WORKERS} processes sharing one fresh file lose no increment and no key`, async () => {
  const id = newSessionId();
  const workers = Array.from({ length: WORKERS }, (_, i) => start(i, id));
  await Promise.all(workers.map((w) => w.ready));
  for (const w of workers) w.child.stdin.end('go\n');
  const reports = await Promise.all(workers.map((w) => w.done));

  expect(reports.filter((r) => r.created)).toHaveLength(1);
  expect(reports.flatMap((r) => r.failures)).toEqual([]);
  // Every increment saw a distinct value: none read a stale count.
  const counts = reports.flatMap((r) => r.counts).sort((a, b) => a - b);
  expect(counts).toEqual(Array.from({ length: WORKERS * ROUNDS }, (_, i) => i + 1));

  const store = await sqliteStore({ path });
  try {
    const session = await store.load(id, Date.now());
    expect(session?.attributes.n).toBe(String(WORKERS * ROUNDS));
    const keys = Object.keys(session?.attributes ?? {}).filter((k) => k.startsWith('w'));
    expect(keys).toHaveLength(WORKERS * ROUNDS);
    expect(session?.meta.rev).toBe(1 + 2 * WORKERS * ROUNDS);
  } finally {
    await store.close();
  }
}, 60_000);
