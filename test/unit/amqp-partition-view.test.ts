import { describe, expect, it } from 'vitest';
import { parsePartitions, partitionKey, partitionOf } from '../../src/bus/amqp-partition.js';
import { ANCHOR_EVERY, PartitionView } from '../../src/bus/amqp-view.js';

describe('amqp partitions', () => {
  it('hashes a channel to the same partition every time, and spreads 10,000 user channels over all 16', () => {
    expect(partitionOf('user:42', 16)).toBe(partitionOf('user:42', 16));
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 10_000; i++)
      counts[partitionOf(`user:${i}`, 16)] = (counts[partitionOf(`user:${i}`, 16)] ?? 0) + 1;
    // 625 expected per partition; a hash this uneven would mean one hot partition.
    for (const c of counts) expect(c).toBeGreaterThan(500);
    expect(partitionKey(16, 3)).toBe('~p16-3');
  });

  it('reads the partition count from the URL or option, with a one-line error for a bad one', () => {
    expect(parsePartitions(undefined)).toBe(16);
    expect(parsePartitions('4')).toBe(4);
    expect(() => parsePartitions('0')).toThrow('amqp bus: partitions=0 must be a whole number from 1 to 1024');
    expect(() => parsePartitions(2.5)).toThrow(/whole number/);
  });
});

describe('a partition view', () => {
  it('starts a history read at the newest anchor at or before the wanted offset', () => {
    const view = new PartitionView(3);
    view.reset('e', 0);
    for (let offset = 1; offset <= 4 * ANCHOR_EVERY; offset++) view.record('c', offset, offset * 10);
    // Anchors at offsets 1, 65, 129, 193; the view keeps the newest 3.
    expect(view.startFor('c', 0)).toBe(650); // offset 1 was dropped: the oldest kept anchor (a read then finds a gap)
    expect(view.startFor('c', 100)).toBe(650);
    expect(view.startFor('c', 128)).toBe(1290);
    expect(view.startFor('c', 250)).toBe(2510); // one of the newest 8 records: that record itself
    expect(view.startFor('c', 248)).toBe(2490);
    expect(view.startFor('c', 247)).toBe(1930); // just before the tail: the anchor at 193
    expect(view.startFor('other', 0)).toBeUndefined();
    expect(view.head('c')).toBe(4 * ANCHOR_EVERY);
  });

  it('ignores an offset it already has, and survives a checkpoint round trip', () => {
    const view = new PartitionView(3);
    view.reset('e', 0);
    view.record('a', 1, 0);
    view.record('a', 2, 1);
    view.record('a', 1, 5);
    expect(view.channels.get('a')).toEqual({ last: 2, lastAt: 1, anchors: [1, 0], tail: [0, 1] });
    const copy = new PartitionView(3);
    copy.reset('e', 0);
    copy.load(JSON.parse(JSON.stringify(view.checkpoint())));
    expect(copy.channels).toEqual(view.channels);
    expect(view.checkpoint().k).toBe('e');
  });
});
