import { randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { amqpBus, dropAmqpNamespace } from '../../src/bus/amqp.js';
import { freshToken, logNames, routingKey, tokenBody } from '../../src/bus/amqp-log.js';
import { BusUnavailableError } from '../../src/core/errors.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { freePort } from '../helpers/processes.js';
import { busOpener, describeBusConformance, expectCatchUpAfterCut, expectRacingOffsets, sleep } from './bus-suite.js';

const skip = await engineSkipReason('amqp');
const namespace = `test-${randomUUID().slice(0, 8)}`;
const url = ENGINE_URLS.amqp;

afterAll(async () => {
  if (!skip) await dropAmqpNamespace(url, namespace);
});

describeBusConformance(
  'amqp',
  {
    connect: (options) => amqpBus({ url, namespace, ...options }),
    connectDown: () => amqpBus({ url: 'amqp://guest:guest@127.0.0.1:1', namespace, timeoutMs: 300 }),
    dropNamespace: (ns) => dropAmqpNamespace(url, ns),
  },
  skip,
);

describe('dropAmqpNamespace', () => {
  it('says, when the broker is down, where and what to check, as the bus does, not a bare ECONNREFUSED', async () => {
    const port = await freePort();
    const err = await dropAmqpNamespace(`amqp://guest:secret-pass@127.0.0.1:${port}`, namespace).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BusUnavailableError);
    expect((err as Error).message).toBe(
      `message bus amqp (127.0.0.1:${port}): dropAmqpNamespace(url, "${namespace}") failed: connect ECONNREFUSED 127.0.0.1:${port}. ` +
        'Check that RabbitMQ is running and reachable.',
    );
    expect((err as Error).message).not.toContain('secret-pass');
  });
});

describe.skipIf(skip !== undefined)('amqp bus specifics', () => {
  const open = busOpener((extra: Partial<Parameters<typeof amqpBus>[0]>) => amqpBus({ url, namespace, ...extra }));
  const channel = () => `c-${randomUUID()}`;

  it('maps channel names to single, distinct routing-key words', () => {
    const names = ['a', 'a.b', 'a*', 'a#', 'a b', 'ü', 'a%2E', '', 'user:42', 'x'.repeat(300), 'y'.repeat(300)];
    const keys = names.map(routingKey);
    expect(new Set(keys).size).toBe(names.length);
    for (const k of keys) {
      expect(k).not.toMatch(/[.*]/);
      expect(Buffer.byteLength(k)).toBeLessThanOrEqual(200);
    }
  });

  it('says when RabbitMQ refuses the virtual host or the password: the URL needs correcting, not the broker starting', async () => {
    const noVhost = new URL(url);
    noVhost.pathname = '/shoal-no-such-vhost';
    const wrongPassword = new URL(url);
    wrongPassword.password = 'not-the-password';
    for (const [bad, said, todo] of [
      [noVhost, /refused the virtual host "shoal-no-such-vhost"/, /Correct the virtual host in the URL, or create it/],
      [wrongPassword, /ACCESS_REFUSED/, /refused the user or password in the URL/],
    ] as const) {
      const bus = await open({ url: bad.href, timeoutMs: 2000 });
      const err = (await bus.ping().catch((e: unknown) => e)) as Error;
      expect(err.message).toMatch(said);
      expect(err.message).toMatch(todo);
      expect(err.message).not.toMatch(/running and reachable|ConnectionOpenOk/);
      expect(err.message).not.toContain('not-the-password');
    }
  });

  it('gives strictly consecutive offsets to 4 clients racing on one channel', async () => {
    await expectRacingOffsets(open, channel());
  });

  it('gets the offset token back from a holder whose connection died', async () => {
    const bus = await open();
    const ch = channel();
    await bus.publish(ch, { event: 'e', data: '1' });
    const raw = await amqplib.connect(url);
    const rc = await raw.createChannel();
    const held = await rc.get(logNames(namespace, ch).token, { noAck: false });
    expect(held).not.toBe(false);
    const waiting = bus.publish(ch, { event: 'e', data: '2' });
    await sleep(100);
    await raw.close(); // like a crash: the unacked token is requeued, nothing was committed
    expect(await waiting).toMatchObject({ offset: 2 });
  });

  /** Deletes the queues of the channel's partition log behind every client's back, as an operator might. */
  async function deleteLog(ch: string): Promise<void> {
    const raw = await amqplib.connect(url);
    const rc = await raw.createChannel();
    const names = logNames(namespace, ch);
    await rc.deleteQueue(names.token);
    await rc.deleteQueue(names.stream);
    await raw.close();
  }

  it('starts a new epoch when the log is deleted on the broker', async () => {
    const bus = await open();
    const ch = channel();
    const first = await bus.publish(ch, { event: 'e', data: '1' });
    await deleteLog(ch);
    const fresh = await open();
    const after = await fresh.read(ch, 1, { epoch: first.epoch });
    expect(after).toMatchObject({ messages: [], complete: false });
    expect(after.epoch).not.toBe(first.epoch);
    // The old client finds its log gone, makes no new one of its own, and follows the new epoch.
    expect(await bus.publish(ch, { event: 'e', data: '2' })).toMatchObject({ epoch: after.epoch, offset: 1 });
  });

  it('makes its log again when it was deleted under it, with no other client to make it first', async () => {
    const bus = await open();
    const ch = channel();
    const first = await bus.publish(ch, { event: 'e', data: '1' });
    await deleteLog(ch);
    // The broker refuses the token's basic.get with "no queue": the log is made again, under a new epoch.
    const again = await bus.publish(ch, { event: 'e', data: '2' });
    expect(again.epoch).not.toBe(first.epoch);
    expect(again.offset).toBe(1);
  });

  it('makes a log holding two tokens (a log made twice at once by an earlier version) again, under a new epoch', async () => {
    const bus = await open();
    const ch = channel();
    const first = await bus.publish(ch, { event: 'e', data: '1' });
    const raw = await amqplib.connect(url);
    try {
      const rc = await raw.createChannel();
      const names = logNames(namespace, ch);
      rc.sendToQueue(names.token, tokenBody(freshToken(0)), { persistent: true });
      await rc.checkQueue(names.token);
      // A client new to the partition finds two tokens where one belongs.
      const fresh = await open();
      const sent = [];
      for (let i = 2; i <= 4; i++) sent.push(await fresh.publish(ch, { event: 'e', data: String(i) }));
      expect(sent.map((m) => m.offset)).toEqual([1, 2, 3]);
      expect(new Set(sent.map((m) => m.epoch)).size).toBe(1);
      expect(sent[0]?.epoch).not.toBe(first.epoch);
      expect((await rc.checkQueue(names.token)).messageCount).toBe(1);
      // The client that used the old log follows the new epoch.
      expect(await bus.publish(ch, { event: 'e', data: '5' })).toMatchObject({ epoch: sent[0]?.epoch, offset: 4 });
    } finally {
      await raw.close();
    }
  });

  it(
    'loses nothing published while its connection is cut: it reconnects, re-binds and catches up in order',
    () => expectCatchUpAfterCut(url, { subscriber: (via) => open({ url: via }), publisher: () => open() }, 15_000),
    30_000,
  );
});
