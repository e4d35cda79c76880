/**
 * One side of the bus-latency scenario, as its own process (`node --import tsx
 * bench/lib/bus-peer.ts`, driven over IPC): opens a bus from a URL, then either
 * subscribes and records publish→deliver latency from the `t` in each payload, or
 * publishes at a steady rate. Publisher and subscriber never share a process, so the
 * message really crosses the backend (for sqlite: the file, found by polling).
 */
import type { Bus } from '../../src/bus/contract.js';
import { createBus } from '../../src/bus/index.js';
import { Histogram, type HistogramData, nowMs } from './histogram.js';

export type PeerCommand =
  | { cmd: 'open'; url: string; namespace: string; subscribe?: string }
  | { cmd: 'publish'; channel: string; rate: number; durationS: number }
  | { cmd: 'reset' }
  | { cmd: 'snapshot' }
  | { cmd: 'close' };

export type PeerReply =
  | { type: 'started' }
  | { type: 'opened' }
  | { type: 'published'; count: number }
  | { type: 'reset' }
  | { type: 'snapshot'; received: number; histogram: HistogramData; outOfOrder: number }
  | { type: 'error'; message: string }
  | { type: 'closed' };

const reply = (m: PeerReply) => process.send?.(m);
const hist = new Histogram();
let received = 0;
let outOfOrder = 0;
let lastOffset = 0;
let bus: Bus | undefined;

async function open(cmd: Extract<PeerCommand, { cmd: 'open' }>): Promise<void> {
  // One process serves several runs: each opens its own bus.
  await bus?.close();
  received = 0;
  outOfOrder = 0;
  lastOffset = 0;
  hist.reset();
  bus = await createBus(cmd.url, { namespace: cmd.namespace });
  if (cmd.subscribe) {
    bus.onMessage((m) => {
      const t = (JSON.parse(m.data) as { t: number }).t;
      hist.record(nowMs() - t);
      received++;
      if (m.offset <= lastOffset) outOfOrder++;
      lastOffset = m.offset;
    });
    await bus.subscribe(cmd.subscribe);
  }
}

/** A steady rate: every millisecond or so, whatever is due by now goes out, each stamped as it is handed over. */
async function publish(cmd: Extract<PeerCommand, { cmd: 'publish' }>): Promise<number> {
  const b = bus;
  if (!b) throw new Error('publish before open');
  const start = performance.now();
  const end = start + cmd.durationS * 1000;
  let sent = 0;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - start) / 1000) * cmd.rate);
    while (sent < due) {
      sent++;
      await b.publish(cmd.channel, { event: 'm', data: `{"n":${sent},"t":${nowMs()}}` });
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  return sent;
}

process.on('message', (cmd: PeerCommand) => {
  const fail = (err: unknown) => reply({ type: 'error', message: String(err) });
  switch (cmd.cmd) {
    case 'open':
      open(cmd).then(() => reply({ type: 'opened' }), fail);
      return;
    case 'publish':
      publish(cmd).then((count) => reply({ type: 'published', count }), fail);
      return;
    case 'reset':
      hist.reset();
      received = 0;
      outOfOrder = 0;
      reply({ type: 'reset' });
      return;
    case 'snapshot':
      reply({ type: 'snapshot', received, histogram: hist.toData(), outOfOrder });
      return;
    case 'close':
      void (bus?.close() ?? Promise.resolve()).finally(() => {
        reply({ type: 'closed' });
        setTimeout(() => process.exit(0), 20);
      });
      return;
  }
});

process.on('disconnect', () => process.exit(0));
reply({ type: 'started' });
