import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { BusMessage } from '../../src/bus/contract.js';
import { sqliteBus } from '../../src/bus/sqlite.js';
import { BusUnavailableError, ConfigError } from '../../src/core/errors.js';
import { eventually } from '../helpers/eventually.js';
import { busOpener, collect, describeBusConformance, expectNamespacesApart } from './bus-suite.js';

// A directory that does not exist yet: the bus must create it.
const dir = join(tmpdir(), `shoal-bus-sqlite-${randomUUID()}`);
const path = join(dir, 'nested', 'bus.db');
const namespace = `test-${randomUUID().slice(0, 8)}`;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each connect opens its own connection to the same file, as separate processes would.
describeBusConformance('sqlite', { connect: (options) => sqliteBus({ path, namespace, ...options }) });

describe('sqlite bus specifics', () => {
  const open = busOpener((options: Partial<Parameters<typeof sqliteBus>[0]>) =>
    sqliteBus({ path, namespace, ...options }),
  );
  const channel = () => `c-${randomUUID()}`;

  it('receives, in order, all 1,000 messages another process publishes (prints p50/p99 latency)', async () => {
    const sub = await open();
    const got: BusMessage[] = [];
    const arrived: number[] = [];
    sub.onMessage((m) => {
      got.push(m);
      arrived.push(Date.now());
    });
    const ch = channel();
    await sub.subscribe(ch);
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('./bus-sqlite-publisher.ts', import.meta.url)),
        path,
        namespace,
        ch,
        '1000',
      ],
      { stdio: ['ignore', 'inherit', 'pipe'] },
    );
    let stderr = '';
    let code: number | null = -1;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('exit', (c) => {
      code = c;
    });
    try {
      await eventually(() => got.length >= 1000, {
        timeoutMs: 40_000,
        message: () => `received ${got.length}/1000; child stderr: ${stderr}`,
      });
      await eventually(() => code !== -1, { message: () => `child exit; stderr: ${stderr}` });
      expect(code, `child stderr: ${stderr}`).toBe(0);
    } finally {
      child.kill();
    }
    expect(got.map((m) => m.offset)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(got.map((m) => (JSON.parse(m.data) as { i: number }).i)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const latency = got.map((m, i) => (arrived[i] ?? 0) - m.publishedAt).sort((a, b) => a - b);
    const pct = (p: number) => latency[Math.min(latency.length - 1, Math.floor((p / 100) * latency.length))] ?? 0;
    console.info(
      `[bus sqlite] cross-process publish→deliver latency: p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${pct(100)} ms`,
    );
    expect(pct(99)).toBeLessThan(250);
  }, 60_000);

  it('turns a write lock held past timeoutMs into BusUnavailableError, within the timeout; reads go on', async () => {
    const bus = await open({ timeoutMs: 200 });
    const ch = channel();
    await bus.publish(ch, { event: 'e', data: '1' });
    const holder = new Database(path);
    try {
      holder.exec('BEGIN IMMEDIATE');
      const started = Date.now();
      const failed = bus.publish(ch, { event: 'e', data: '2' });
      await expect(failed).rejects.toBeInstanceOf(BusUnavailableError);
      await expect(failed).rejects.toThrow(/locked .* 200 ms/);
      expect(Date.now() - started).toBeLessThan(2000);
      // Readers are not blocked by a writer in WAL mode.
      expect((await bus.read(ch, 0)).messages).toHaveLength(1);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    expect((await bus.publish(ch, { event: 'e', data: '2' })).offset).toBe(2);
  });

  it('trims the file to about historySize rows per channel once the lag grace is over', async () => {
    const bus = await open({ historySize: 5, lagGraceMs: 0 });
    const ch = channel();
    for (let i = 0; i < 50; i++) await bus.publish(ch, { event: 'e', data: String(i) });
    const db = new Database(path, { readonly: true });
    try {
      const { n } = db
        .prepare<[string, string], { n: number }>(
          'SELECT count(*) AS n FROM shoal_bus_log WHERE namespace = ? AND channel = ?',
        )
        .get(namespace, ch) ?? { n: -1 };
      expect(n).toBeGreaterThanOrEqual(5);
      expect(n).toBeLessThanOrEqual(5 + 16);
    } finally {
      db.close();
    }
  });

  it('forgets history past historyTtlMs; a channel idle past it resumes under a new epoch (reload, not replay)', async () => {
    const bus = await open({ historyTtlMs: 100 });
    const ch = channel();
    const sent: BusMessage[] = [];
    for (let i = 0; i < 3; i++) sent.push(await bus.publish(ch, { event: 'e', data: String(i) }));
    const epoch = sent[0]?.epoch;
    expect(await bus.read(ch, 0, { epoch })).toMatchObject({ complete: true });
    // The trimmer runs about once a second.
    await eventually(() => {
      const db = new Database(path, { readonly: true });
      try {
        return (
          db.prepare('SELECT 1 FROM shoal_bus_channels WHERE namespace = ? AND channel = ?').get(namespace, ch) ===
          undefined
        );
      } finally {
        db.close();
      }
    });
    const after = await bus.read(ch, 3, { epoch });
    expect(after).toMatchObject({ messages: [], complete: false });
    expect(after.epoch).not.toBe(epoch);
    const next = await bus.publish(ch, { event: 'e', data: 'new' });
    expect(next).toMatchObject({ epoch: after.epoch, offset: 1 });
  });

  it('keeps namespaces apart in one file', async () => {
    await expectNamespacesApart(
      await open({ namespace: `${namespace}-a` }),
      await open({ namespace: `${namespace}-b` }),
      100,
    );
  });

  it('names the path and what to do when the directory cannot be created', async () => {
    mkdirSync(dir, { recursive: true });
    const blocker = join(dir, 'a-file');
    writeFileSync(blocker, 'not a directory');
    const bad = join(blocker, 'sub', 'bus.db');
    const err = await sqliteBus({ path: bad }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(bad);
    expect((err as Error).message).toMatch(/SHOAL_BUS=sqlite:/);
  });

  it('works on a private in-memory database, and says it is not shared', async () => {
    const bus = await open({ path: ':memory:' });
    expect(bus.capabilities.shared).toBe(false);
    const got = collect(bus);
    const ch = channel();
    await bus.subscribe(ch);
    const sent = await bus.publish(ch, { event: 'e', data: '1' });
    await eventually(() => got.length >= 1, { timeoutMs: 2000 });
    expect(got).toEqual([sent]);
  });
});
