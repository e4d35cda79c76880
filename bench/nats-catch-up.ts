/**
 * How long a NATS bus client subscribed to many channels takes to catch up after its connection
 * was cut: it subscribes to `--channels` channels through a fault proxy, the proxy goes down, one
 * message is published on each of `--missed` of them, the proxy comes back; timed from then until
 * the client received every missed message (each exactly once, checked). Run it against a server
 * of your own.
 *
 * `tsx bench/nats-catch-up.ts --url nats://127.0.0.1:4222 [--channels 10000] [--missed 1000] [--rounds 3]`
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { Bus } from '../src/bus/contract.js';
import { natsBus, streamName } from '../src/bus/nats.js';
import { faultProxy, targetOf, viaProxy } from '../test/helpers/fault-proxy.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'nats://127.0.0.1:4222' },
    channels: { type: 'string', default: '10000' },
    missed: { type: 'string', default: '1000' },
    rounds: { type: 'string', default: '3' },
  },
});
const n = Number(values.channels);
const missed = Number(values.missed);
const rounds = Number(values.rounds);
if (!(n >= 1 && missed >= 1 && missed <= n && rounds >= 1)) {
  throw new Error('--channels, --missed (at most --channels) and --rounds take positive numbers');
}
const CATCH_UP_LIMIT_MS = 120_000;

async function inParallel(count: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(64, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

async function round(): Promise<number> {
  const namespace = `bench-catch-up-${randomUUID().slice(0, 8)}`;
  const proxy = await faultProxy(targetOf(values.url));
  const buses: Bus[] = [];
  try {
    const subscriber = await natsBus({ url: viaProxy(values.url, proxy), namespace, timeoutMs: 10_000 });
    buses.push(subscriber);
    const publisher = await natsBus({ url: values.url, namespace, timeoutMs: 10_000 });
    buses.push(publisher);
    const channels = Array.from({ length: n }, (_, i) => `user:${i}`);
    const seen = new Map<string, number>();
    subscriber.onMessage((m) => seen.set(m.channel, (seen.get(m.channel) ?? 0) + 1));
    await inParallel(n, (i) => subscriber.subscribe(channels[i] as string));
    await proxy.down();
    await inParallel(missed, (i) => publisher.publish(channels[i] as string, { event: 'e', data: '"missed"' }));
    const started = performance.now();
    await proxy.up();
    while (seen.size < missed && performance.now() - started < CATCH_UP_LIMIT_MS) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const took = performance.now() - started;
    const twice = [...seen.values()].filter((count) => count > 1).length;
    if (seen.size < missed || twice > 0) {
      console.log(`  caught up ${seen.size}/${missed} channels, ${twice} delivered twice`);
      return Number.NaN;
    }
    return took;
  } finally {
    await Promise.allSettled(buses.map((b) => b.close()));
    await proxy.close();
    const { connect } = await import('nats');
    const nc = await connect({ servers: targetOf(values.url) });
    await (await nc.jetstreamManager()).streams.delete(streamName(namespace)).catch(() => false);
    await nc.close();
  }
}

console.log(
  `nats-catch-up: ${values.url}, ${n} channels subscribed, ${missed} missed, load average at start ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const times: number[] = [];
for (let r = 0; r < rounds; r++) {
  const ms = await round();
  console.log(`  round ${r + 1}: caught up in ${ms.toFixed(0)} ms`);
  times.push(ms);
}
const sorted = [...times].sort((a, b) => a - b);
console.log(
  `catch-up ms: median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(0)} (min ${sorted[0]?.toFixed(0)}, max ${sorted.at(-1)?.toFixed(0)})`,
);
process.exit(0);
