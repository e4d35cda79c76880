import { describe, expect, it } from 'vitest';
import { ChannelCursors } from '../../src/client/channel-state.js';

const msg = (offset: number, epoch = 'E1', channel = 'room') => ({
  type: 'msg' as const,
  channel,
  epoch,
  offset,
  event: 'e',
  data: offset,
});
const subscribed = (offset: number, recovered: boolean, epoch = 'E1', channel = 'room') => ({
  type: 'subscribed' as const,
  channel,
  epoch,
  offset,
  recovered,
});

describe('channel cursors', () => {
  it('delivers each offset once and in order, and flags holes', () => {
    const c = new ChannelCursors();
    expect(c.subscribed(subscribed(0, false))).toBe(false); // a first join is not a reset
    expect(c.accept(msg(1))).toBe('deliver');
    expect(c.accept(msg(2))).toBe('deliver');
    expect(c.accept(msg(2))).toBe('duplicate');
    expect(c.accept(msg(1))).toBe('duplicate');
    expect(c.accept(msg(4))).toBe('gap');
    expect(c.get('room')).toEqual({ epoch: 'E1', offset: 2 }); // a gap never moves the cursor
    expect(c.accept(msg(3))).toBe('deliver');
    expect(c.accept(msg(4))).toBe('deliver');
  });

  it('keeps its position on recovered:true, so a replay overlapping what it saw is deduplicated', () => {
    const c = new ChannelCursors();
    c.subscribed(subscribed(0, false));
    for (let i = 1; i <= 5; i++) c.accept(msg(i));
    expect(c.subscribed(subscribed(3, true))).toBe(false);
    expect(c.accept(msg(4))).toBe('duplicate');
    expect(c.accept(msg(5))).toBe('duplicate');
    expect(c.accept(msg(6))).toBe('deliver');
  });

  it('reports a reset when the gateway cannot replay from a known position', () => {
    const c = new ChannelCursors();
    c.subscribed(subscribed(0, false));
    c.accept(msg(1));
    expect(c.subscribed(subscribed(40, false))).toBe(true);
    expect(c.get('room')).toEqual({ epoch: 'E1', offset: 40 });
    expect(c.accept(msg(41))).toBe('deliver');
    // New epoch: the log was lost.
    expect(c.subscribed(subscribed(0, false, 'E2'))).toBe(true);
    expect(c.accept(msg(1, 'E2'))).toBe('deliver');
  });

  it('no reset when recovered:false lands exactly where the client is (a bus without history, nothing missed)', () => {
    const c = new ChannelCursors();
    c.subscribed(subscribed(7, false));
    expect(c.subscribed(subscribed(7, false))).toBe(false);
  });

  it('a new epoch inside the message stream is a reset, then that message is delivered', () => {
    const c = new ChannelCursors();
    c.subscribed(subscribed(0, false));
    c.accept(msg(1));
    expect(c.accept(msg(5, 'E2'))).toBe('reset');
    expect(c.accept(msg(6, 'E2'))).toBe('deliver');
    expect(c.accept(msg(5, 'E2'))).toBe('duplicate');
  });

  it('snapshots only the channels asked for, and forgets a channel on delete', () => {
    const c = new ChannelCursors();
    c.subscribed(subscribed(3, false, 'E1', 'a'));
    c.subscribed(subscribed(9, false, 'E1', 'b'));
    expect([...c.snapshot(['a', 'x'])]).toEqual([['a', { epoch: 'E1', offset: 3 }]]);
    c.delete('a');
    expect(c.get('a')).toBeUndefined();
    expect(c.subscribed(subscribed(50, false, 'E1', 'a'))).toBe(false);
  });

  it('follows a log that carries on under a new epoch (recovered:true, a promoted replica) without a reset', () => {
    const c = new ChannelCursors();
    c.subscribed(subscribed(0, false));
    for (let i = 1; i <= 5; i++) c.accept(msg(i));
    // The new log kept offsets up to 3; 4 and 5 were reissued to new messages.
    expect(c.subscribed(subscribed(3, true, 'E2'))).toBe(false);
    expect(c.get('room')).toEqual({ epoch: 'E2', offset: 3 });
    expect(c.accept(msg(4, 'E2'))).toBe('deliver');
    expect(c.accept(msg(4, 'E2'))).toBe('duplicate');
    expect(c.accept(msg(5, 'E2'))).toBe('deliver');
  });
});
