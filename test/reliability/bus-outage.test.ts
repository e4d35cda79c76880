import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { connect as natsConnect } from 'nats';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { amqpBus, dropAmqpNamespace } from '../../src/bus/amqp.js';
import type { Bus, BusMessage } from '../../src/bus/contract.js';
import { natsBus, streamName } from '../../src/bus/nats.js';
import { postgresBus } from '../../src/bus/postgres.js';
import { redisBus } from '../../src/bus/redis.js';
import { sqliteBus } from '../../src/bus/sqlite.js';
import { BusUnavailableError } from '../../src/core/errors.js';
import { ENGINE_URLS, type Engine, engineSkipReason } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { type FaultProxy, faultProxy, targetOf, viaProxy } from '../helpers/fault-proxy.js';
import { ROOT } from '../helpers/processes.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { scratchDir, sleep } from './fixture.js';

/**
 * The bus goes down (port refuses) or is partitioned (blackhole) while a web node
 * keeps publishing unique ids, and comes back. Publisher and subscriber both reach
 * the broker through the fault proxy. What must hold, per bus with history:
 * - a publish either resolves (it is in the log) or rejects with BusUnavailableError
 *   within the timeout — it never hangs;
 * - lost = ∅: every publish that resolved reaches the subscriber after recovery;
 * - unexpected = ∅: nothing that was never attempted, nothing twice. A publish that
 *   rejected is not counted as published, but it may have reached the log anyway (the
 *   reply was lost, not the request): then it is delivered like any other, in order;
 * - the subscriber sees the channel's offsets without a gap, in order.
 */
const TIMEOUT_MS = 500;
const REJECT_WITHIN_MS = TIMEOUT_MS + 1000;
const run = randomUUID().slice(0, 8);

interface Kind {
  engine: Engine;
  open(url: string, namespace: string): Promise<Bus>;
  cleanup(namespace: string): Promise<void>;
}

const pgTable = `shoal_bus_rel_${run.replace(/-/g, '')}`;

const kinds: Kind[] = [
  {
    engine: 'redis',
    open: (url, namespace) => redisBus({ url, namespace, timeoutMs: TIMEOUT_MS }),
    async cleanup(namespace) {
      const raw = new Redis(ENGINE_URLS.redis, { maxRetriesPerRequest: 1 });
      await deleteKeys(raw, `shoal:{${namespace}:*`, { rounds: 100 });
      await raw.quit();
    },
  },
  {
    engine: 'postgres',
    open: (url, namespace) => postgresBus({ url, namespace, table: pgTable, timeoutMs: TIMEOUT_MS }),
    async cleanup() {
      const admin = new pg.Client({ connectionString: ENGINE_URLS.postgres });
      admin.on('error', () => {});
      await admin.connect();
      await admin.query(`DROP TABLE IF EXISTS "${pgTable}_log", "${pgTable}_channels"`);
      await admin.end();
    },
  },
  {
    engine: 'nats',
    open: (url, namespace) => natsBus({ url, namespace, timeoutMs: TIMEOUT_MS }),
    async cleanup(namespace) {
      const nc = await natsConnect({ servers: targetOf(ENGINE_URLS.nats) });
      const jsm = await nc.jetstreamManager();
      await jsm.streams.delete(streamName(namespace)).catch(() => false);
      await nc.close();
    },
  },
  {
    engine: 'amqp',
    open: (url, namespace) => amqpBus({ url, namespace, timeoutMs: TIMEOUT_MS }),
    cleanup: (namespace) => dropAmqpNamespace(ENGINE_URLS.amqp, namespace),
  },
];

/** A process that takes SQLite's write lock, says so, and releases it when its stdin ends. */
const HOLD_LOCK = `
const db = new (require('better-sqlite3'))(process.argv[1], { timeout: 5000 });
db.exec('BEGIN IMMEDIATE');
process.stdout.write('locked\\n');
process.stdin.resume();
process.stdin.on('end', () => { db.exec('ROLLBACK'); db.close(); process.exit(0); });
`;

const idOf = (m: BusMessage) => (JSON.parse(m.data) as { id: string }).id;

const skips = new Map<Engine, string | undefined>();
for (const kind of kinds) skips.set(kind.engine, await engineSkipReason(kind.engine));
const namespaceOf = (kind: Kind) => `rel-${run}-${kind.engine}`;
const proxies: FaultProxy[] = [];
const buses: Bus[] = [];
afterAll(async () => {
  await Promise.allSettled(buses.map((b) => b.close()));
  await Promise.all(proxies.map((p) => p.close()));
  for (const kind of kinds) {
    if (skips.get(kind.engine) !== undefined) continue;
    await kind.cleanup(namespaceOf(kind)).catch((err: unknown) => console.warn(`[cleanup ${kind.engine}]`, err));
  }
});

/**
 * Three publishers in parallel (like request handlers on a web node) publish unique ids on one
 * channel; `fault` is switched on for 1.5 s, then off; publishing goes on until the bus has clearly
 * recovered. Then every guarantee of this file is checked on what `sub` received.
 */
async function publishThrough(
  label: string,
  pub: Bus,
  sub: Bus,
  fault: { begin(): Promise<void> | void; end(): Promise<void> | void },
  settleWithinMs = REJECT_WITHIN_MS,
): Promise<void> {
  const received: BusMessage[] = [];
  sub.onMessage((m) => received.push(m));
  const channel = `rel-${label.replace(/ /g, '-')}-${randomUUID()}`;
  await sub.subscribe(channel);

  const attempted = new Set<string>();
  const published: BusMessage[] = [];
  const slow: string[] = [];
  let rejected = 0;
  /** Rejected publishes the bus said were not published: none of them may ever be delivered. */
  const notPublished = new Set<string>();
  let faulted = false;
  let afterRecovery = 0;
  let stop = false;
  // Three publishers in parallel, each one publish at a time, like request handlers on a web node.
  const lane = async () => {
    while (!stop) {
      // Paced like requests arriving. A bus that answers synchronously (sqlite) would otherwise keep
      // timers from ever firing, and flood its subscriber.
      await sleep(5);
      const id = randomUUID();
      attempted.add(id);
      const started = Date.now();
      const duringFault = faulted;
      try {
        published.push(await pub.publish(channel, { event: 'e', data: JSON.stringify({ id }) }));
        if (!faulted && !duringFault) afterRecovery++;
      } catch (err) {
        expect(err).toBeInstanceOf(BusUnavailableError);
        rejected++;
        if ((err as BusUnavailableError).outcome === 'not-published') notPublished.add(id);
        await sleep(20);
      }
      const took = Date.now() - started;
      if (took > settleWithinMs) slow.push(`${took} ms`);
    }
  };
  const lanes = [lane(), lane(), lane()];
  // Some publishes land before the fault, however slow a loaded machine makes the first ones.
  await sleep(300);
  await eventually(() => published.length >= 3, {
    timeoutMs: 10_000,
    intervalMs: 20,
    message: '3 publishes before the fault',
  });
  const before = published.length;
  faulted = true;
  await fault.begin();
  await sleep(1500);
  afterRecovery = 0;
  await fault.end();
  faulted = false;
  // Publishing goes on until the bus has clearly recovered (bounded: 20 s).
  await eventually(() => afterRecovery >= 20, {
    timeoutMs: 20_000,
    intervalMs: 20,
    message: '20 deliveries after recovery',
  });
  stop = true;
  await Promise.all(lanes);

  expect(before, 'published before the fault').toBeGreaterThan(0);
  expect(rejected, 'publishes rejected during the fault').toBeGreaterThan(0);
  expect(afterRecovery, 'published after recovery').toBeGreaterThanOrEqual(20);

  const publishedIds = new Set(published.map(idOf));
  const seen = () => new Set(received.map(idOf));
  await eventually(() => [...publishedIds].every((id) => seen().has(id)), {
    timeoutMs: 15_000,
    intervalMs: 50,
    message: 'every resolved publish delivered',
  });
  await sleep(200); // anything late or duplicated shows up now
  const got = seen();
  const lost = [...publishedIds].filter((id) => !got.has(id));
  const counts = new Map<string, number>();
  for (const m of received) counts.set(idOf(m), (counts.get(idOf(m)) ?? 0) + 1);
  const unexpected = [...counts].filter(([id, n]) => !attempted.has(id) || n > 1).map(([id, n]) => `${id}×${n}`);
  const offsets = received.map((m) => m.offset);
  const gaps = offsets.filter((o, i) => i > 0 && o !== (offsets[i - 1] as number) + 1);
  const lateLanded = got.size - [...got].filter((id) => publishedIds.has(id)).length;
  const landedNotPublished = [...got].filter((id) => notPublished.has(id));
  console.info(
    `[bus ${label}] published ${published.length}, rejected ${rejected} ` +
      `(${notPublished.size} said not published; ${lateLanded} of those rejected landed anyway), received ${received.length}`,
  );
  expect(landedNotPublished, 'delivered although the bus said not published').toEqual([]);
  expect(lost, 'lost').toEqual([]);
  expect(unexpected, 'unexpected').toEqual([]);
  expect(gaps, `offsets ${offsets.slice(0, 5).join(',')}…`).toEqual([]);
  expect(offsets[0]).toBe(1);
  expect(received.every((m) => m.channel === channel && m.epoch === published[0]?.epoch)).toBe(true);
  // Last, so that a slow bus still reports on loss and order above.
  expect(slow, 'publishes that took longer than the timeout to settle').toEqual([]);
}

// Every bus and fault has its own proxy, clients and channel: they all run side by side.
describe.concurrent('a bus through a fault proxy', () => {
  for (const kind of kinds) {
    const namespace = namespaceOf(kind);
    for (const fault of ['down', 'blackhole'] as const) {
      it.skipIf(skips.get(kind.engine) !== undefined)(
        `${kind.engine} ${fault} while publishing: lost = ∅, unexpected = ∅, no gap, every publish settles within the timeout`,
        async () => {
          const proxy = await faultProxy(targetOf(ENGINE_URLS[kind.engine]));
          proxies.push(proxy);
          const url = viaProxy(ENGINE_URLS[kind.engine], proxy);
          const [pub, sub] = [await kind.open(url, namespace), await kind.open(url, namespace)];
          buses.push(pub, sub);
          await publishThrough(`${kind.engine} ${fault}`, pub, sub, {
            begin: () => (fault === 'down' ? proxy.down() : proxy.blackhole()),
            async end() {
              if (fault === 'down') await proxy.up();
              proxy.clear();
            },
          });
        },
        60_000,
      );
    }
  }
});

// better-sqlite3 waits for a lock synchronously: while the file is locked, each waiting call stalls this
// whole process for up to its timeout. So this one runs alone, and its bound is per lane, not per call.
describe('a sqlite bus whose file is locked by another process', () => {
  it('lost = ∅, unexpected = ∅, no gap; each waiting call stalls the process up to the timeout', async () => {
    const scratch = scratchDir('shoal-bus-lock-');
    const path = join(scratch.dir, 'bus.db');
    const [pub, sub] = [await sqliteBus({ path, timeoutMs: TIMEOUT_MS }), await sqliteBus({ path })];
    // The lock holder is another process, as in production: a holder in this process could never
    // release while a publish waits synchronously.
    let holder: ChildProcess | undefined;
    const fault = {
      async begin() {
        const child = spawn(process.execPath, ['-e', HOLD_LOCK, path], {
          cwd: ROOT,
          stdio: ['pipe', 'pipe', 'inherit'],
        });
        holder = child;
        await new Promise<void>((resolve, reject) => {
          child.stdout?.once('data', () => resolve());
          child.once('exit', (code) => reject(new Error(`lock holder exited with ${code}`)));
        });
      },
      async end() {
        const child = holder;
        if (!child || child.exitCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.stdin?.end('release\n');
        await exited;
      },
    };
    try {
      // Three lanes, each stalled in turn by the others' synchronous waits.
      await publishThrough('sqlite locked', pub, sub, fault, 3 * TIMEOUT_MS + 1000);
    } finally {
      holder?.kill('SIGKILL');
      await pub.close();
      await sub.close();
      scratch.remove();
    }
  }, 60_000);
});
