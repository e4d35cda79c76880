import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/contract.js';
import { BusUnavailableError } from '../../src/core/errors.js';
import { eventually } from '../helpers/eventually.js';
import { faultProxy, targetOf, viaProxy } from '../helpers/fault-proxy.js';
import { closedAfterAll } from '../helpers/opener.js';

export interface BusFixtureOptions {
  /** The history window the suite needs for one test; a fixture passes it to the bus it opens. */
  historySize?: number;
  /** A namespace no client has used yet, instead of the fixture's own; dropped with dropNamespace(). */
  namespace?: string;
}

export interface BusFixture {
  /**
   * A new client of the same backend and namespace (what one client publishes, every
   * other client sees). Options apply to that client only.
   */
  connect(options?: BusFixtureOptions): Promise<Bus>;
  /**
   * A client pointed at a backend that does not answer. It may also reject itself, but
   * then only with BusUnavailableError, within the same bound.
   */
  connectDown?(): Promise<Bus>;
  /** Removes what the backend keeps for a namespace the suite passed to connect(). */
  dropNamespace?(namespace: string): Promise<void>;
}

const NO_HISTORY = 'this bus declares capabilities.history = false';

/** Every message a client receives, in arrival order. */
export function collect(bus: Bus): BusMessage[] {
  const got: BusMessage[] = [];
  bus.onMessage((m) => got.push(m));
  return got;
}

/**
 * Four clients publish 25 messages each on one channel at once: the offsets they get back are
 * exactly 1 to 100, and a read from 0 returns every message sent.
 */
export async function expectRacingOffsets(open: () => Promise<Bus>, ch: string): Promise<void> {
  const buses = await Promise.all(Array.from({ length: 4 }, () => open()));
  const sent: BusMessage[] = [];
  await Promise.all(
    buses.map(async (bus, who) => {
      for (let i = 0; i < 25; i++) sent.push(await bus.publish(ch, { event: 'e', data: `${who}:${i}` }));
    }),
  );
  expect(sent.map((m) => m.offset).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  const read = await buses[0]?.read(ch, 0);
  expect(read?.messages.map((m) => m.data).sort()).toEqual(sent.map((m) => m.data).sort());
}

/**
 * Two clients of one backend in different namespaces: what `a` publishes on a channel neither
 * reaches `b` (within `quietMs`) nor moves `b`'s offsets of the same channel name.
 */
export async function expectNamespacesApart(a: Bus, b: Bus, quietMs: number): Promise<void> {
  const got = collect(b);
  const ch = `c-${randomUUID()}`;
  await b.subscribe(ch);
  await a.publish(ch, { event: 'e', data: '1' });
  await sleep(quietMs);
  expect(got).toEqual([]);
  expect(await b.position(ch)).toMatchObject({ offset: 0 });
  expect((await b.publish(ch, { event: 'e', data: '1' })).offset).toBe(1);
}

/** The two clients of a cut: the subscriber reaches the backend through a proxy URL, the publisher directly. */
/**
 * Opens a driver's buses for a file's own tests (`open(extra)`) and closes every one of them after
 * the enclosing describe's tests. Call it inside the describe.
 */
export function busOpener<O>(open: (extra: O) => Promise<Bus>): (extra?: O) => Promise<Bus> {
  return closedAfterAll(open);
}

export interface CutClients {
  subscriber(proxiedUrl: string): Promise<Bus>;
  publisher(): Promise<Bus>;
}

/**
 * Cuts a subscriber's connection to `url` (its proxy goes down), publishes 20 messages
 * meanwhile, brings the proxy back: within `catchUpMs` the subscriber has all of them, and
 * one published after that arrives after the ones it missed, never before, each exactly once.
 */
export async function expectCatchUpAfterCut(url: string, clients: CutClients, catchUpMs: number): Promise<void> {
  const proxy = await faultProxy(targetOf(url));
  try {
    const sub = await clients.subscriber(viaProxy(url, proxy));
    const pub = await clients.publisher();
    const got = collect(sub);
    const ch = `c-${randomUUID()}`;
    await sub.subscribe(ch);
    const sent: BusMessage[] = [await pub.publish(ch, { event: 'e', data: '0' })];
    await eventually(() => got.length === 1);
    await proxy.down();
    for (let i = 1; i <= 20; i++) sent.push(await pub.publish(ch, { event: 'e', data: String(i) }));
    await proxy.up();
    await eventually(() => got.length === 21, { timeoutMs: catchUpMs, message: () => `got ${got.length}/21` });
    sent.push(await pub.publish(ch, { event: 'e', data: '21' }));
    await eventually(() => got.length === 22);
    await sleep(100);
    expect(got).toEqual(sent);
  } finally {
    await proxy.close();
  }
}

/** Data carrying a unique id, so loss, duplication and strays are told apart. */
const payload = (extra: Record<string, unknown> = {}) => JSON.stringify({ id: randomUUID(), ...extra });
const idOf = (m: BusMessage) => (JSON.parse(m.data) as { id: string }).id;

/** Runs `count` tasks with at most `width` in flight. */
async function inParallel(count: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, lane));
}

/**
 * Lost, unexpected (never published, or delivered twice) and out-of-order messages
 * of one receiver, against what was published on `channels`.
 */
function audit(published: BusMessage[], received: BusMessage[], channels: string[]) {
  const sent = new Map(published.map((m) => [idOf(m), m]));
  const seen = new Set<string>();
  const unexpected: string[] = [];
  const disorder: string[] = [];
  const lastOffset = new Map<string, number>();
  for (const m of received) {
    if (!channels.includes(m.channel)) continue;
    const id = idOf(m);
    if (!sent.has(id) || seen.has(id)) unexpected.push(`${m.channel}#${m.offset} ${id}`);
    seen.add(id);
    const prev = lastOffset.get(m.channel);
    if (prev !== undefined && m.offset !== prev + 1) disorder.push(`${m.channel}: ${prev} → ${m.offset}`);
    lastOffset.set(m.channel, m.offset);
  }
  const lost = [...sent.keys()].filter((id) => !seen.has(id));
  return { lost, unexpected, disorder, received: seen.size };
}

/**
 * The one conformance suite every message bus passes (the Bus contract in
 * src/bus/contract.ts). Tests needing history skip, with the reason, on a bus
 * that declares capabilities.history = false. Every wait is bounded.
 */
export function describeBusConformance(name: string, fixture: BusFixture, skipReason?: string): void {
  const title = `bus conformance: ${name}${skipReason ? ` (skipped: ${skipReason})` : ''}`;
  describe.skipIf(skipReason !== undefined)(title, () => {
    const opened: Bus[] = [];
    const open = async (options?: BusFixtureOptions) => {
      const bus = await fixture.connect(options);
      opened.push(bus);
      return bus;
    };
    // Closed after each test: open clients hold connections, and test files run side by side on one server.
    afterEach(async () => {
      await Promise.allSettled(opened.splice(0).map((b) => b.close()));
    });
    // Unique per run: several runs may share one backend and namespace.
    const run = randomUUID().slice(0, 8);
    let n = 0;
    const channel = (label = 'c') => `t${run}:${label}:${++n}`;

    it('delivers what two clients publish on four channels to a third: none lost, none unexpected, in offset order', async () => {
      const [a, b, sub] = [await open(), await open(), await open()];
      const got = collect(sub);
      const channels = Array.from({ length: 4 }, () => channel('fanin'));
      for (const ch of channels) await sub.subscribe(ch);
      const published: BusMessage[] = [];
      const perPublisher = 200;
      await Promise.all(
        [a, b].map((bus, who) =>
          inParallel(perPublisher, 8, async (i) => {
            const ch = channels[i % channels.length] as string;
            published.push(await bus.publish(ch, { event: 'chat.message', data: payload({ who, i }) }));
          }),
        ),
      );
      await eventually(() => got.length >= published.length, { timeoutMs: 15_000 });
      await sleep(150); // late duplicates would arrive now
      const report = audit(published, got, channels);
      expect(report.lost, 'lost (published, never received)').toEqual([]);
      expect(report.unexpected, 'unexpected (never published, or duplicated)').toEqual([]);
      expect(report.disorder, 'per-channel offsets must rise by exactly 1').toEqual([]);

      for (const ch of channels) {
        const mine = published.filter((m) => m.channel === ch).sort((x, y) => x.offset - y.offset);
        const offsets = mine.map((m) => m.offset);
        const first = offsets[0] ?? 0;
        expect(offsets, `publish() offsets on ${ch} are distinct and contiguous`).toEqual(
          offsets.map((_, i) => first + i),
        );
        expect(new Set(mine.map((m) => m.epoch)).size).toBe(1);
        // What arrives is exactly what publish() returned.
        expect(got.filter((m) => m.channel === ch)).toEqual(mine);
      }
    }, 60_000);

    it('keeps event, data (unicode, quotes, 48 KiB) and publishedAt byte for byte', async () => {
      const [pub, sub] = [await open(), await open()];
      const got = collect(sub);
      const ch = channel('fidelity');
      await sub.subscribe(ch);
      const data = JSON.stringify({
        id: randomUUID(),
        text: 'héllo ✓ "quoted" \\ \n\t 🐟 ключ',
        nul: null,
        big: 'x'.repeat(48 * 1024),
      });
      const before = Date.now();
      const sent = await pub.publish(ch, { event: 'ns:event.name/with-chars', data });
      expect(sent).toMatchObject({ channel: ch, event: 'ns:event.name/with-chars', data });
      expect(sent.offset).toBeGreaterThanOrEqual(1);
      expect(typeof sent.epoch).toBe('string');
      expect(sent.epoch.length).toBeGreaterThan(0);
      expect(sent.publishedAt).toBeGreaterThanOrEqual(before - 1000);
      expect(sent.publishedAt).toBeLessThanOrEqual(Date.now() + 1000);
      await eventually(() => got.length >= 1);
      expect(got).toEqual([sent]);
    });

    it('keeps channels apart, whatever characters their names hold (dots, wildcards, spaces, unicode)', async () => {
      const [pub, one, all] = [await open(), await open(), await open()];
      const gotOne = collect(one);
      const gotAll = collect(all);
      const base = channel('names');
      const names = [`${base}:a`, `${base}:a.b`, `${base}:*`, `${base}:>`, `${base}:#`, `${base}:a b/ü`, `${base}:a:b`];
      await one.subscribe(`${base}:a`);
      for (const ch of names) await all.subscribe(ch);
      const sent: BusMessage[] = [];
      for (const ch of names) sent.push(await pub.publish(ch, { event: 'e', data: payload() }));
      await eventually(() => gotAll.length >= names.length && gotOne.length >= 1);
      await sleep(150);
      expect(gotOne).toEqual(sent.filter((m) => m.channel === `${base}:a`));
      expect([...gotAll].sort((x, y) => x.channel.localeCompare(y.channel))).toEqual(
        [...sent].sort((x, y) => x.channel.localeCompare(y.channel)),
      );
      for (const m of sent) expect(m.offset).toBe(1);
    });

    it('delivers a client its own messages (gateway canaries rely on it)', async () => {
      const bus = await open();
      const got = collect(bus);
      const ch = channel('self');
      await bus.subscribe(ch);
      const sent = await bus.publish(ch, { event: 'canary', data: payload() });
      await eventually(() => got.length >= 1);
      expect(got).toEqual([sent]);
    });

    it('treats a second subscribe as a no-op (one delivery), and unsubscribe stops delivery', async () => {
      const [pub, sub] = [await open(), await open()];
      const got = collect(sub);
      const [ch, marker] = [channel('unsub'), channel('marker')];
      await sub.subscribe(ch);
      await sub.subscribe(ch);
      await sub.subscribe(marker);
      const first = await pub.publish(ch, { event: 'e', data: payload() });
      await eventually(() => got.length >= 1);
      await sleep(100);
      expect(got).toEqual([first]);

      await sub.unsubscribe(ch);
      await sub.unsubscribe(channel('never-subscribed'));
      await pub.publish(ch, { event: 'e', data: payload() });
      // The marker travels after the unsubscribed message; once it is in, the other would be too.
      const mark = await pub.publish(marker, { event: 'e', data: payload() });
      await eventually(() => got.length >= 2);
      await sleep(150);
      expect(got).toEqual([first, mark]);

      // Subscribing again resumes live delivery.
      await sub.subscribe(ch);
      const again = await pub.publish(ch, { event: 'e', data: payload() });
      await eventually(() => got.length >= 3);
      expect(got[2]).toEqual(again);
      expect(again.offset).toBe(3);
    });

    it('reports position(): epoch stable across clients from before the first publish, offset of the newest', async () => {
      const [a, b, c] = [await open(), await open(), await open()];
      const ch = channel('position');
      const empty = await a.position(ch);
      expect(empty.offset).toBe(0);
      expect(empty.epoch.length).toBeGreaterThan(0);
      expect(await b.position(ch)).toEqual(empty);
      const sent = [];
      for (let i = 0; i < 3; i++) sent.push(await b.publish(ch, { event: 'e', data: payload() }));
      expect(sent.map((m) => m.offset)).toEqual([1, 2, 3]);
      expect(sent.every((m) => m.epoch === empty.epoch)).toBe(true);
      expect(await c.position(ch)).toEqual({ epoch: empty.epoch, offset: 3 });
      expect(await a.position(ch)).toEqual({ epoch: empty.epoch, offset: 3 });
    });

    it('gives one epoch and offsets from 1 when a client first uses 40 channels of a new namespace at once', async () => {
      // Whatever the backend makes on a namespace's or a channel's first use, many calls from one
      // client making it at once must make it once: made twice, a channel's offsets go out twice.
      const namespace = `fresh-${run}`;
      const [first, publisher] = [await open({ namespace }), await open({ namespace })];
      try {
        const channels = Array.from({ length: 40 }, (_, i) => channel(`fresh-${i}`));
        const [starts] = await Promise.all([
          Promise.all(channels.map((ch) => first.position(ch))),
          Promise.all(channels.slice(0, 10).map((ch) => first.subscribe(ch))),
        ]);
        const sent = await Promise.all(
          channels.map(async (ch) => [
            await publisher.publish(ch, { event: 'e', data: '1' }),
            await publisher.publish(ch, { event: 'e', data: '2' }),
          ]),
        );
        for (const [i, ch] of channels.entries()) {
          const epoch = starts[i]?.epoch;
          expect({ ch, start: starts[i]?.offset, sent: sent[i]?.map((m) => [m.epoch === epoch, m.offset]) }).toEqual({
            ch,
            start: 0,
            sent: [
              [true, 1],
              [true, 2],
            ],
          });
        }
      } finally {
        await Promise.allSettled([first.close(), publisher.close()]);
        await fixture.dropNamespace?.(namespace);
      }
    });

    it('read(after) returns exactly the messages after the offset; limit; future offsets; wrong epoch', async (ctx) => {
      const [pub, reader] = [await open(), await open()];
      if (!reader.capabilities.history) return ctx.skip(NO_HISTORY);
      const ch = channel('read');
      const sent: BusMessage[] = [];
      for (let i = 0; i < 10; i++) sent.push(await pub.publish(ch, { event: `e${i}`, data: payload({ i }) }));
      const epoch = sent[0]?.epoch ?? '';

      expect(await reader.read(ch, 0)).toEqual({ epoch, messages: sent, complete: true });
      expect(await reader.read(ch, 4)).toEqual({ epoch, messages: sent.slice(4), complete: true });
      expect(await reader.read(ch, 4, { epoch })).toEqual({ epoch, messages: sent.slice(4), complete: true });
      expect(await reader.read(ch, 4, { limit: 3 })).toEqual({ epoch, messages: sent.slice(4, 7), complete: true });
      expect(await reader.read(ch, 10)).toEqual({ epoch, messages: [], complete: true });
      // An offset this log never reached: the caller saw another incarnation, it must reload.
      expect(await reader.read(ch, 11)).toEqual({ epoch, messages: [], complete: false });
      // A resume token from another incarnation of the log is never replayed against this one.
      expect(await reader.read(ch, 4, { epoch: `${epoch}-other` })).toEqual({ epoch, messages: [], complete: false });
      expect(await reader.read(ch, 0, { epoch: `${epoch}-other` })).toEqual({ epoch, messages: [], complete: false });
      // A channel nobody published on: empty and complete, under the epoch its first publish will carry.
      const fresh = channel('read-fresh');
      const empty = await reader.read(fresh, 0);
      expect(empty).toMatchObject({ messages: [], complete: true });
      expect((await pub.publish(fresh, { event: 'e', data: payload() })).epoch).toBe(empty.epoch);
    });

    it('never passes a partial replay off as complete once history is trimmed (historySize 5)', async (ctx) => {
      const [pub, reader] = [await open({ historySize: 5 }), await open({ historySize: 5 })];
      if (!reader.capabilities.history) return ctx.skip(NO_HISTORY);
      const ch = channel('window');
      const sent: BusMessage[] = [];
      for (let i = 0; i < 12; i++) sent.push(await pub.publish(ch, { event: 'e', data: payload({ i }) }));
      const epoch = sent[0]?.epoch ?? '';
      // The window holds offsets 8..12.
      expect(await reader.read(ch, 7)).toEqual({ epoch, messages: sent.slice(7), complete: true });
      expect(await reader.read(ch, 9, { epoch })).toEqual({ epoch, messages: sent.slice(9), complete: true });
      for (const after of [0, 3, 6]) {
        expect(await reader.read(ch, after), `read after ${after}`).toEqual({ epoch, messages: [], complete: false });
      }
      expect(await reader.position(ch)).toEqual({ epoch, offset: 12 });
    });

    it('never claims completeness it cannot back: complete:true means every message after the offset', async () => {
      // Holds for buses without history too (they answer complete:false instead of replaying).
      const [pub, reader] = [await open(), await open()];
      const ch = channel('honest');
      const sent: BusMessage[] = [];
      for (let i = 0; i < 3; i++) sent.push(await pub.publish(ch, { event: 'e', data: payload() }));
      for (const after of [0, 1, 2, 3]) {
        const r = await reader.read(ch, after);
        expect(r.epoch).toBe(sent[0]?.epoch);
        if (r.complete) expect(r.messages).toEqual(sent.slice(after));
        else expect(r.messages).toEqual([]);
      }
    });

    it('delivers a burst of 2,000 messages complete and in order', async () => {
      const [pub, sub] = [await open(), await open()];
      const got = collect(sub);
      const ch = channel('burst');
      await sub.subscribe(ch);
      const published: BusMessage[] = [];
      const started = Date.now();
      await inParallel(2000, 32, async (i) => {
        published.push(await pub.publish(ch, { event: 'tick', data: payload({ i }) }));
      });
      await eventually(() => got.length >= 2000, { timeoutMs: 30_000 });
      const took = Date.now() - started;
      await sleep(150);
      const report = audit(published, got, [ch]);
      expect(report.lost.length, 'lost').toBe(0);
      expect(report.unexpected, 'unexpected').toEqual([]);
      expect(report.disorder, 'disorder').toEqual([]);
      expect(got.map((m) => m.offset)).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
      console.info(`[bus ${name}] burst of 2000 published and delivered in ${took} ms`);
    }, 60_000);

    it('rejects with BusUnavailableError after close (close is idempotent)', async () => {
      const bus = await fixture.connect();
      await bus.ping();
      await bus.close();
      await expect(bus.publish(channel('closed'), { event: 'e', data: '1' })).rejects.toBeInstanceOf(
        BusUnavailableError,
      );
      await expect(bus.ping()).rejects.toBeInstanceOf(BusUnavailableError);
      await bus.close();
    });

    it.skipIf(!fixture.connectDown)(
      'fails ping and publish with BusUnavailableError, within 10 s, when the backend is down',
      async () => {
        const started = Date.now();
        let bus: Bus | undefined;
        try {
          bus = await fixture.connectDown?.();
        } catch (err) {
          expect(err).toBeInstanceOf(BusUnavailableError);
        }
        if (bus) {
          opened.push(bus);
          await expect(bus.ping()).rejects.toBeInstanceOf(BusUnavailableError);
          await expect(bus.publish(channel('down'), { event: 'e', data: '1' })).rejects.toBeInstanceOf(
            BusUnavailableError,
          );
        }
        expect(Date.now() - started).toBeLessThan(10_000);
      },
      30_000,
    );
  });
}

export { sleep };
