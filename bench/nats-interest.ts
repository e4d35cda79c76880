/**
 * Live delivery on NATS: one plain subscription per channel, or one wildcard per client?
 * A gateway joins `--joined` of `--channels` channels; one message is published on every channel.
 * Per layout: how long the gateway takes to subscribe (SUBs + flush), the server's subscription
 * count and RSS growth, how many messages the gateway must take in, and how long until it has the
 * ones on its channels. Plain core NATS on a server of your own (no JetStream needed).
 *
 * `tsx bench/nats-interest.ts --url nats://127.0.0.1:4222 --monitor http://127.0.0.1:8222
 *   [--channels 10000] [--joined 1000] [--rounds 3]`
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { connect, type NatsConnection } from 'nats';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'nats://127.0.0.1:4222' },
    monitor: { type: 'string', default: 'http://127.0.0.1:8222' },
    channels: { type: 'string', default: '10000' },
    joined: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
  },
});
const n = Number(values.channels);
const joined = Number(values.joined);
const rounds = Number(values.rounds);
if (!(n >= 1 && joined >= 1 && joined <= n && rounds >= 1)) {
  throw new Error('--channels, --joined (at most --channels) and --rounds take positive numbers');
}
const servers = values.url.replace(/^nats:\/\//, '');

async function varz(): Promise<{ subscriptions: number; mem: number }> {
  const r = await fetch(`${values.monitor}/varz`);
  return (await r.json()) as { subscriptions: number; mem: number };
}

const ms = (t0: number) => performance.now() - t0;

async function round(layout: 'per-channel' | 'wildcard', prefix: string) {
  const before = await varz();
  const gateway = await connect({ servers });
  const publisher = await connect({ servers });
  let wanted = 0;
  let taken = 0;
  let allIn: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allIn = resolve;
  });
  const mine = new Set(Array.from({ length: joined }, (_, i) => `${prefix}.user:${i}`));
  const onMessage = (subject: string) => {
    taken++;
    if (mine.has(subject) && ++wanted === joined) allIn();
  };
  const t0 = performance.now();
  if (layout === 'wildcard') {
    gateway.subscribe(`${prefix}.>`, { callback: (_err, m) => onMessage(m.subject) });
  } else {
    for (const subject of mine) gateway.subscribe(subject, { callback: (_err, m) => onMessage(m.subject) });
  }
  await gateway.flush();
  const subscribeMs = ms(t0);
  const after = await varz();
  const t1 = performance.now();
  for (let i = 0; i < n; i++) publisher.publish(`${prefix}.user:${i}`, '["e",1,"e","\\"x\\"",0]');
  await publisher.flush();
  const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 60_000).unref());
  const late = await Promise.race([done.then(() => false), timeout]);
  const deliverMs = ms(t1);
  await gateway.flush();
  const result = {
    subscribeMs,
    serverSubs: after.subscriptions - before.subscriptions,
    serverMiB: (after.mem - before.mem) / 1048576,
    taken,
    deliverMs: late ? Number.NaN : deliverMs,
  };
  await close(gateway);
  await close(publisher);
  return result;
}

async function close(nc: NatsConnection) {
  await nc.drain().catch(() => nc.close());
}

const spread = (xs: number[], digits = 0) => {
  const s = [...xs].sort((a, b) => a - b);
  const f = (x: number | undefined) => x?.toFixed(digits);
  return `${f(s[Math.floor(s.length / 2)])} (${f(s[0])}–${f(s.at(-1))})`;
};

console.log(
  `nats-interest: ${values.url}, ${n} channels, the gateway joined ${joined}, load average at start ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
for (const layout of ['per-channel', 'wildcard'] as const) {
  const rows: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    const result = await round(layout, `bench_interest_${process.pid}_${layout}_${r}`);
    for (const [k, v] of Object.entries(result)) {
      rows[k] ??= [];
      rows[k].push(v);
    }
  }
  console.log(`${layout}, ${rounds} rounds, median (min–max):`);
  for (const [k, v] of Object.entries(rows)) console.log(`  ${k.padEnd(12)} ${spread(v, k === 'serverMiB' ? 1 : 0)}`);
}
process.exit(0);
