/**
 * What a broker bus costs per channel: publish throughput and broker memory with many
 * channels (every user has a `user:` channel, so channels grow with users).
 * Per round, in a fresh namespace: one publish on each of N channels (the first one makes
 * the channel's log), a second publish on each (steady state), then one client subscribes
 * to all N, and one more publish on each is timed until that client received all N (live
 * delivery while subscribed). Broker memory and the namespace's queues / JetStream objects are
 * read after each phase; the namespace is deleted at the end of the round.
 *
 * `tsx bench/bus-scale.ts --bus amqp|nats [--url …] [--node rabbit@host] [--pid N] [--channels 1000,10000]
 *   [--rounds 3] [--concurrency 64] [--no-subscribe]`
 * The amqp URL may carry `?partitions=N`. Memory: `rabbitmqctl status` (RabbitMQ's own
 * total and the OS RSS) / the nats-server process RSS (`--pid` names a private server's process,
 * otherwise the oldest nats-server); both brokers must run on this machine.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { parseArgs, promisify } from 'node:util';
import { dropAmqpNamespace } from '../src/bus/amqp.js';
import type { Bus } from '../src/bus/contract.js';
import { createBus } from '../src/bus/index.js';
import { streamName } from '../src/bus/nats.js';

const run = promisify(execFile);

const { values } = parseArgs({
  options: {
    bus: { type: 'string', default: 'amqp' },
    url: { type: 'string' },
    channels: { type: 'string', default: '1000,10000' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    'no-subscribe': { type: 'boolean', default: false },
    /** The RabbitMQ node rabbitmqctl asks (a private broker for the bench, e.g. shoalbench@localhost). */
    node: { type: 'string' },
    /** The nats-server process whose memory is read (a private server for the bench). */
    pid: { type: 'string' },
  },
});
const kind = values.bus;
if (kind !== 'amqp' && kind !== 'nats') throw new Error(`--bus ${kind}: write --bus amqp or --bus nats`);
const url = values.url ?? (kind === 'amqp' ? 'amqp://guest:guest@127.0.0.1:5672' : 'nats://127.0.0.1:4222');
const counts = values.channels.split(',').map(Number);
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);
if (counts.some((n) => !(n >= 1)) || !(rounds >= 1) || !(concurrency >= 1)) {
  throw new Error('--channels, --rounds and --concurrency take positive numbers, e.g. --channels 1000,10000');
}

interface Broker {
  /** Bytes: the broker's own account and the OS resident set. */
  memory(): Promise<{ own: number; rss: number }>;
  /** Queues (amqp) or streams/subjects/consumers (nats) the namespace holds. */
  objects(ns: string): Promise<Record<string, number>>;
  drop(ns: string): Promise<void>;
}

async function rss(process: string): Promise<number> {
  const pid = values.pid ?? (await run('pgrep', ['-o', process])).stdout.trim();
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

const ctl = (...args: string[]) =>
  run('rabbitmqctl', [...(values.node ? ['-n', values.node] : []), ...args], { maxBuffer: 1 << 26 });

const amqpBroker: Broker = {
  async memory() {
    const { stdout } = await ctl('status', '--formatter', 'json');
    const total = (JSON.parse(stdout) as { memory: { total: { erlang: number; rss: number } } }).memory.total;
    return { own: total.erlang, rss: total.rss };
  },
  async objects(ns) {
    const { stdout } = await ctl('list_queues', '-q', '--no-table-headers', 'name', 'type');
    const mine = stdout.split('\n').filter((l) => l.startsWith(`shoal.${ns}.`));
    return { queues: mine.length, streams: mine.filter((l) => /\sstream\s*$/.test(l)).length };
  },
  drop: (ns) => dropAmqpNamespace(url, ns),
};

async function natsBroker(): Promise<Broker> {
  const nats = await import('nats');
  const nc = await nats.connect({ servers: url.replace(/^nats:\/\//, '') });
  const jsm = await nc.jetstreamManager();
  return {
    async memory() {
      const r = await rss('nats-server');
      return { own: r, rss: r };
    },
    async objects(ns) {
      const info = await jsm.streams.info(streamName(ns)).catch(() => undefined);
      return {
        streams: info ? 1 : 0,
        subjects: info?.state.num_subjects ?? 0,
        consumers: info?.state.consumer_count ?? 0,
      };
    },
    async drop(ns) {
      await jsm.streams.delete(streamName(ns)).catch(() => false);
    },
  };
}

async function inParallel(n: number, work: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) await work(next++);
    }),
  );
  return (performance.now() - started) / 1000;
}

/** One publish on each channel, timed until the subscribed client received them all (NaN after 120 s). */
async function deliveredRate(bus: Bus, channels: string[]): Promise<number> {
  let received = 0;
  let allIn: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allIn = resolve;
  });
  bus.onMessage(() => {
    if (++received === channels.length) allIn();
  });
  const started = performance.now();
  try {
    await inParallel(channels.length, (i) => bus.publish(channels[i] as string, { event: 'e', data: '"z"' }));
  } catch (err) {
    console.log(`  delivery: a publish failed after ${received} received: ${String(err)}`);
    return Number.NaN;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), 120_000);
  });
  const late = await Promise.race([done.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late) console.log(`  delivery: ${received}/${channels.length} received within 120 s`);
  return late ? Number.NaN : channels.length / ((performance.now() - started) / 1000);
}

const mb = (b: number) => (b / 1048576).toFixed(0);
const spread = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)]?.toFixed(0)} (min ${s[0]?.toFixed(0)}, max ${s.at(-1)?.toFixed(0)})`;
};

const broker = kind === 'amqp' ? amqpBroker : await natsBroker();
console.log(
  `bus-scale: ${kind} ${url.replace(/\/\/[^@/]*@/, '//')}, load average at start ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
for (const n of counts) {
  const rows: Record<string, number[]> = {};
  const add = (k: string, v: number) => {
    rows[k] ??= [];
    rows[k].push(v);
  };
  for (let r = 0; r < rounds; r++) {
    const ns = `bench-scale-${randomUUID().slice(0, 8)}`;
    const base = await broker.memory();
    const bus: Bus = await createBus(url, { namespace: ns, timeoutMs: 30_000 });
    const channels = Array.from({ length: n }, (_, i) => `user:${i}-${ns}`);
    try {
      const first = await inParallel(n, (i) => bus.publish(channels[i] as string, { event: 'e', data: '"x"' }));
      const second = await inParallel(n, (i) => bus.publish(channels[i] as string, { event: 'e', data: '"y"' }));
      const afterPublish = await broker.memory();
      const objects = await broker.objects(ns);
      add('first publish/s', n / first);
      add('steady publish/s', n / second);
      add('broker MiB after publish (own)', (afterPublish.own - base.own) / 1048576);
      add('broker MiB after publish (rss)', (afterPublish.rss - base.rss) / 1048576);
      add('broker RSS MiB after publish', afterPublish.rss / 1048576);
      for (const [k, v] of Object.entries(objects)) add(k, v);
      let line = `  n=${n} round ${r + 1}: first ${(n / first).toFixed(0)}/s, steady ${(n / second).toFixed(0)}/s, +${mb(afterPublish.own - base.own)} MiB own / +${mb(afterPublish.rss - base.rss)} MiB rss, ${JSON.stringify(objects)}`;
      if (!values['no-subscribe']) {
        let subscribed = 0;
        const sub = await inParallel(n, async (i) => {
          await bus.subscribe(channels[i] as string);
          subscribed++;
        }).catch(async (err: unknown) => {
          // A broker that cannot take N subscriptions is a finding, not a crash of the bench.
          const at = JSON.stringify(await broker.objects(ns));
          console.log(`  n=${n} round ${r + 1}: subscribe failed after ${subscribed} channels (${at}): ${String(err)}`);
          return Number.NaN;
        });
        const afterSubscribe = await broker.memory();
        const subObjects = await broker.objects(ns);
        add('subscribe/s', n / sub);
        add('broker MiB subscribed (own)', (afterSubscribe.own - base.own) / 1048576);
        // Absolute too: a garbage-collected broker keeps what earlier rounds freed, so deltas go negative.
        add('broker RSS MiB subscribed', afterSubscribe.rss / 1048576);
        for (const [k, v] of Object.entries(subObjects)) add(`${k} subscribed`, v);
        line += `; subscribe ${(n / sub).toFixed(0)}/s, +${mb(afterSubscribe.own - base.own)} MiB own, ${JSON.stringify(subObjects)}`;
        if (Number.isFinite(sub)) {
          const delivered = await deliveredRate(bus, channels);
          add('subscribed publish+deliver/s', delivered);
          line += `; subscribed publish+deliver ${delivered.toFixed(0)}/s`;
        }
      }
      console.log(line);
    } finally {
      await bus.close();
      await broker.drop(ns);
    }
  }
  console.log(`n=${n} channels, ${rounds} rounds:`);
  for (const [k, v] of Object.entries(rows)) console.log(`  ${k.padEnd(32)} ${spread(v)}`);
}
process.exit(0);
