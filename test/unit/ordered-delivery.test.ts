import { describe, expect, it } from 'vitest';
import type { BusMessage } from '../../src/bus/contract.js';
import { type Backlog, OrderedDelivery } from '../../src/bus/ordered-delivery.js';
import { createLogger } from '../../src/core/logger.js';

/** A channel's log as history answers it: per epoch its messages, and which epoch continues which. */
class Log {
  readonly epochs = new Map<string, BusMessage[]>();
  /** new epoch → [the epoch it continues, the newest offset it kept of it] */
  readonly links = new Map<string, [string, number]>();
  current = 'E1';

  publish(data: string, epoch = this.current): BusMessage {
    const list = this.epochs.get(epoch) ?? [];
    this.epochs.set(epoch, list);
    const m = { channel: 'room', epoch, offset: list.length + 1, event: 'e', data, publishedAt: 0 };
    list.push(m);
    return m;
  }

  /** A replica promoted with the first `kept` offsets of the current epoch. */
  promote(epoch: string, kept: number): void {
    const old = this.epochs.get(this.current) ?? [];
    this.epochs.set(
      epoch,
      old.slice(0, kept).map((m) => ({ ...m, epoch })),
    );
    this.links.set(epoch, [this.current, kept]);
    this.current = epoch;
  }

  fetch = async (channel: string, after: number, asked: string | undefined): Promise<Backlog> => {
    const list = this.epochs.get(this.current) ?? [];
    const link = this.links.get(this.current);
    const from = asked !== undefined && link?.[0] === asked ? Math.min(after, link[1]) : undefined;
    const start = from ?? after;
    const answer: Backlog = {
      epoch: this.current,
      last: list.length,
      messages: list.filter((m) => m.channel === channel && m.offset > start),
      complete: true,
    };
    if (from !== undefined) answer.from = from;
    return answer;
  };
}

const settle = () => new Promise((r) => setTimeout(r, 10));

function subscriber(log: Log) {
  const got: BusMessage[] = [];
  const delivery = new OrderedDelivery(log.fetch, () => (m) => got.push(m), createLogger({}, 'silent'));
  delivery.hold('room');
  delivery.start('room', { epoch: log.current, offset: 0 });
  return { got, delivery, seen: () => got.map((m) => `${m.epoch}:${m.offset}:${m.data}`) };
}

describe('OrderedDelivery across a new epoch', () => {
  it('carries on where a continuing epoch (a promoted replica that kept everything) picks up, without replaying', async () => {
    const log = new Log();
    const s = subscriber(log);
    for (const d of ['a', 'b', 'c']) s.delivery.push(log.publish(d));
    log.promote('E2', 3);
    s.delivery.push(log.publish('d'));
    await settle();
    expect(s.seen()).toEqual(['E1:1:a', 'E1:2:b', 'E1:3:c', 'E2:4:d']);
    expect(s.got[3]?.continues, 'the first message of the new epoch says which it continues').toEqual({
      epoch: 'E1',
      offset: 3,
    });
    s.delivery.push(log.publish('e'));
    await settle();
    expect(s.got[4]?.continues).toBeUndefined();
  });

  it('delivers offsets the promoted replica handed out again, once', async () => {
    const log = new Log();
    const s = subscriber(log);
    for (const d of ['a', 'b', 'c', 'd']) s.delivery.push(log.publish(d));
    log.promote('E2', 2); // c and d never reached the replica
    const x = log.publish('x');
    log.publish('y');
    s.delivery.push(log.publish('z')); // x and y's live messages were lost: history has them
    await settle();
    expect(x.offset).toBe(3);
    expect(s.seen().slice(4)).toEqual(['E2:3:x', 'E2:4:y', 'E2:5:z']);
    expect(s.got[4]?.continues).toEqual({ epoch: 'E1', offset: 2 });
  });

  it('delivers a log that starts over (no link to ours) from its first offset', async () => {
    const log = new Log();
    const s = subscriber(log);
    for (const d of ['a', 'b']) s.delivery.push(log.publish(d));
    log.current = 'E9';
    log.publish('p');
    s.delivery.push(log.publish('q'));
    await settle();
    expect(s.seen().slice(2)).toEqual(['E9:1:p', 'E9:2:q']);
    expect(s.got[2]?.continues).toBeUndefined();
  });

  it('after a reconnect, catches up across a continuing epoch and tells the next live message', async () => {
    const log = new Log();
    const s = subscriber(log);
    for (const d of ['a', 'b']) s.delivery.push(log.publish(d));
    log.promote('E2', 2);
    expect(await s.delivery.resync('room')).toBe(true);
    s.delivery.push(log.publish('c'));
    await settle();
    expect(s.seen()).toEqual(['E1:1:a', 'E1:2:b', 'E2:3:c']);
    expect(s.got[2]?.continues).toEqual({ epoch: 'E1', offset: 2 });
  });
});
