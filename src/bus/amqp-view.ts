/**
 * What one client knows of a partition: every channel's newest offset (and where its
 * records lie in the partition stream) as of stream offset `upTo`. Only the holder of
 * the partition's token changes the partition, so a view caught up to the token's
 * `seq` is the truth, and the next offset of a channel is `last + 1`.
 */

/** A channel's record at every ANCHOR_EVERY-th offset is remembered, so a read of its history starts near it. */
export const ANCHOR_EVERY = 64;
/** The stream offsets of a channel's newest records: a resume a few messages back starts right at them. */
const TAIL = 8;

export interface ChannelState {
  /** Newest offset (0: none yet in this epoch). */
  last: number;
  /** Stream offset of the record with offset `last`. */
  lastAt: number;
  /** [offset, stream offset] pairs of offsets 1, 65, 129, … (the newest few), flat. */
  anchors: number[];
  /** Stream offsets of the newest TAIL records, ending with `lastAt`. */
  tail: number[];
}

/** A checkpoint record's body: the whole table, so a client new to the partition starts there. */
export interface Checkpoint {
  k: string;
  t: Array<[string, number, number, number[], number[]]>;
}

export class PartitionView {
  epoch = '';
  /** Stream offsets below this are applied; -1: nothing known, rebuild from the checkpoint. */
  upTo = -1;
  readonly channels = new Map<string, ChannelState>();

  /** @param keepAnchors anchors kept per channel: enough to cover the history window. */
  constructor(private readonly keepAnchors: number) {}

  reset(epoch: string, upTo: number): void {
    this.epoch = epoch;
    this.upTo = upTo;
    this.channels.clear();
  }

  /** After a failed or unknown outcome: the next use rebuilds from the broker. */
  invalidate(): void {
    this.upTo = -1;
  }

  record(channel: string, offset: number, at: number): void {
    let s = this.channels.get(channel);
    if (!s) {
      s = { last: 0, lastAt: -1, anchors: [], tail: [] };
      this.channels.set(channel, s);
    }
    if (offset <= s.last) return;
    // Offsets of a channel rise by exactly 1, so the tail stays the newest records in a row.
    if (offset !== s.last + 1) s.tail = [];
    s.last = offset;
    s.lastAt = at;
    s.tail.push(at);
    if (s.tail.length > TAIL) s.tail.shift();
    if ((offset - 1) % ANCHOR_EVERY === 0) {
      s.anchors.push(offset, at);
      if (s.anchors.length > 2 * this.keepAnchors) s.anchors.splice(0, 2);
    }
  }

  head(channel: string): number {
    return this.channels.get(channel)?.last ?? 0;
  }

  /** Where to start reading `channel` for offsets after `after`: that record itself if it is recent, else the newest anchor at or before it. */
  startFor(channel: string, after: number): number | undefined {
    const s = this.channels.get(channel);
    if (!s) return undefined;
    const inTail = s.tail.length - (s.last - after);
    if (inTail >= 0 && inTail < s.tail.length) return s.tail[inTail];
    const a = s.anchors;
    if (a.length === 0) return undefined;
    let at = a[1] as number;
    for (let i = 0; i < a.length; i += 2) if ((a[i] as number) <= after + 1) at = a[i + 1] as number;
    return at;
  }

  checkpoint(): Checkpoint {
    const t: Checkpoint['t'] = [];
    for (const [channel, s] of this.channels) if (s.last > 0) t.push([channel, s.last, s.lastAt, s.anchors, s.tail]);
    return { k: this.epoch, t };
  }

  load(c: Checkpoint): void {
    this.channels.clear();
    for (const [channel, last, lastAt, anchors, tail] of c.t)
      this.channels.set(channel, { last, lastAt, anchors, tail: tail ?? [] });
  }
}
