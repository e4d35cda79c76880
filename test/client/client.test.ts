import { describe, expect, it } from 'vitest';
import { CloseCode, connect, type RealtimeError, type ShoalClient } from '../../src/client/index.js';
import { encodeCursors } from '../../src/protocol/index.js';
import { createPublisher } from '../../src/realtime/publisher.js';
import { createRealtime } from '../../src/realtime/realtime.js';
import {
  browserWebSocket,
  closedAfterEachTest,
  drainItsGatewayWhilePublishing,
  fast,
  sleep,
  until,
} from './harness.js';

type Events = { chat: { n: number }; note: { text: string } };

const perTest = closedAfterEachTest();

/** Records what a channel delivers: offsets (to check order and duplicates) and payloads. */
function recorder(client: ShoalClient<Events>, channel: string) {
  const offsets: number[] = [];
  const values: number[] = [];
  client.subscribe(channel, (m) => {
    offsets.push(m.offset);
    if (m.event === 'chat') values.push(m.data.n);
  });
  return { offsets, values };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('client SDK against a real gateway (WebSocket)', () => {
  it('connects, subscribes and receives published messages in order', async () => {
    const cluster = await perTest.startCluster();
    const alice = await cluster.login('alice');
    const rt = perTest.track(
      connect<Events>(cluster.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast }),
    );
    const room = recorder(rt, 'room:1');
    await until('open + subscribed', () => rt.state === 'open' && rt.cursor('room:1') !== undefined);
    expect(rt.hello?.user).toBe('alice');
    expect(rt.hello?.channels).toContain('user:alice');
    expect(rt.hello?.channels.join()).not.toContain(alice.id); // the raw session id never reaches page JS

    const publisher = createPublisher<Events>(cluster.bus);
    for (let n = 1; n <= 50; n++) await publisher.to('room:1').send('chat', { n });
    await until('50 messages', () => room.offsets.length >= 50);
    expect(room.offsets).toEqual(range(1, 50));
    expect(room.values).toEqual(range(1, 50));

    // The user channel the gateway joined on its own reaches a subscriber too.
    const notes: string[] = [];
    rt.subscribe('user:alice', (m) => {
      if (m.event === 'note') notes.push(m.data.text);
    });
    await until('user channel joined', () => rt.cursor('user:alice') !== undefined);
    await publisher.to({ user: 'alice' }).send('note', { text: 'hi' });
    await until('note', () => notes.length === 1);
    expect(notes).toEqual(['hi']);
  });

  it('resumes after network cuts with nothing lost or delivered twice', async () => {
    const cluster = await perTest.startCluster();
    const alice = await cluster.login('alice');
    const resets: string[] = [];
    const rt = perTest.track(
      connect<Events>(cluster.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast }),
    );
    rt.on('reset', (ch) => resets.push(ch));
    const room = recorder(rt, 'room:cut');
    await until('subscribed', () => rt.cursor('room:cut') !== undefined);

    const publisher = createPublisher<Events>(cluster.bus);
    const total = 300;
    let reconnects = 0;
    rt.on('state', (s) => {
      if (s === 'reconnecting') reconnects++;
    });
    for (let n = 1; n <= total; n++) {
      await publisher.to('room:cut').send('chat', { n });
      if (n % 75 === 0) {
        // Three cuts while messages keep flowing, each of a live connection (never of one still reconnecting).
        await until('open before the cut', () => rt.state === 'open');
        const before = reconnects;
        cluster.balancer.cut();
        await until('cut noticed', () => reconnects > before);
      }
      if (n % 10 === 0) await sleep(5);
    }
    await until('every message', () => room.offsets.length >= total, 10_000);
    await sleep(100); // anything extra (a duplicate) would show up now
    expect(reconnects).toBeGreaterThanOrEqual(3);
    expect(room.offsets).toEqual(range(1, total));
    expect(resets).toEqual([]);
  });

  it('moves to another gateway when its gateway drains (1012), resuming there', async () => {
    const cluster = await perTest.startCluster({ gateways: 2 });
    const alice = await cluster.login('alice');
    const codes: number[] = [];
    const rt = perTest.track(
      connect<Events>(cluster.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast }),
    );
    rt.on('state', (s, d) => {
      if (s === 'reconnecting' && d.code !== undefined) codes.push(d.code);
    });
    const room = recorder(rt, 'room:drain');
    await until('subscribed', () => rt.cursor('room:drain') !== undefined);
    const first = await drainItsGatewayWhilePublishing(cluster, rt, 'room:drain', 20, 60);
    await until('every message', () => room.offsets.length >= 60, 10_000);
    await until('on the other gateway', () => rt.state === 'open' && rt.hello?.gateway !== first);
    expect(codes[0]).toBe(CloseCode.Restart);
    expect(room.offsets).toEqual(range(1, 60));
  });

  it('emits reset (never a partial replay) when the history it needs is gone', async () => {
    const cluster = await perTest.startCluster({ historySize: 5 });
    const alice = await cluster.login('alice');
    const resets: string[] = [];
    const rt = perTest.track(
      connect<Events>(cluster.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast }),
    );
    rt.on('reset', (ch) => resets.push(ch));
    const room = recorder(rt, 'room:reset');
    await until('subscribed', () => rt.cursor('room:reset') !== undefined);
    const publisher = createPublisher<Events>(cluster.bus);
    for (let n = 1; n <= 3; n++) await publisher.to('room:reset').send('chat', { n });
    await until('3 messages', () => room.offsets.length === 3);

    cluster.balancer.refuse(true);
    cluster.balancer.cut();
    await until('disconnected', () => rt.state === 'reconnecting');
    for (let n = 4; n <= 23; n++) await publisher.to('room:reset').send('chat', { n }); // 20 > history of 5
    cluster.balancer.refuse(false);
    await until('reset', () => resets.length === 1, 5000);
    expect(resets).toEqual(['room:reset']);
    expect(rt.cursor('room:reset')?.offset).toBe(23);
    await publisher.to('room:reset').send('chat', { n: 24 });
    await until('next message', () => room.offsets.length === 4);
    expect(room.offsets).toEqual([1, 2, 3, 24]);

    // A short outage inside the history window replays instead.
    cluster.balancer.refuse(true);
    cluster.balancer.cut();
    await until('disconnected', () => rt.state === 'reconnecting');
    for (let n = 25; n <= 27; n++) await publisher.to('room:reset').send('chat', { n });
    cluster.balancer.refuse(false);
    await until('replayed', () => room.offsets.length === 7);
    expect(room.offsets).toEqual([1, 2, 3, 24, 25, 26, 27]);
    expect(resets).toHaveLength(1);
  });

  it('stops for good when the session ends (4001)', async () => {
    const cluster = await perTest.startCluster();
    const alice = await cluster.login('alice');
    const realtime = createRealtime({ bus: cluster.bus, sessions: cluster.sessions });
    let sockets = 0;
    const rt = perTest.track(
      connect(cluster.url, { WebSocket: browserWebSocket(alice.cookie, () => sockets++), backoff: fast }),
    );
    let ended: { code?: number } | undefined;
    rt.on('state', (s, d) => {
      if (s === 'ended') ended = d;
    });
    await until('open', () => rt.state === 'open' && rt.hello !== null);
    await cluster.sessions.destroySession(alice.id);
    await until('ended', () => rt.state === 'ended');
    expect(ended?.code).toBe(CloseCode.SessionEnded);
    const before = sockets;
    await sleep(400); // twenty backoff windows
    expect(sockets).toBe(before);
    expect(rt.state).toBe('ended');
    await realtime.close();
  });

  it('connecting without a session ends (4401) instead of retrying forever', async () => {
    const cluster = await perTest.startCluster();
    for (const cookie of ['', `${cluster.sessions.cookieName}=forged.value`]) {
      let sockets = 0;
      const rt = perTest.track(
        connect(cluster.url, { WebSocket: browserWebSocket(cookie, () => sockets++), backoff: fast }),
      );
      const states: Array<{ state: string; code?: number; reason?: string }> = [];
      rt.on('state', (state, d) => states.push({ state, ...d }));
      await until('ended', () => rt.state === 'ended');
      expect(states.at(-1)).toMatchObject({
        state: 'ended',
        code: CloseCode.Unauthorized,
        reason: 'no session: sign in, then connect again',
      });
      expect(rt.hello).toBeNull();
      await sleep(400); // twenty backoff windows
      expect(sockets).toBe(1);
      expect(rt.state).toBe('ended');
    }
  });

  it('over the connection limit (4429) it reconnects with backoff and gets in once a slot frees up', async () => {
    const cluster = await perTest.startCluster({ gateways: 0 });
    await cluster.startGateway({ maxConnectionsPerSession: 1 });
    const alice = await cluster.login('alice');
    const first = perTest.track(connect(cluster.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast }));
    await until('first open', () => first.hello !== null);
    let sockets = 0;
    const codes: number[] = [];
    const second = perTest.track(
      connect(cluster.url, { WebSocket: browserWebSocket(alice.cookie, () => sockets++), backoff: fast }),
    );
    second.on('state', (s, d) => {
      if (s === 'reconnecting' && d.code !== undefined) codes.push(d.code);
    });
    // Each attempt is refused with 4429 and retried; the state stays "reconnecting" throughout.
    await until('three attempts', () => sockets >= 3);
    expect(codes.length).toBeGreaterThanOrEqual(1);
    expect(new Set(codes)).toEqual(new Set([CloseCode.TooManyConnections]));
    expect(second.state).toBe('reconnecting');
    expect(second.hello).toBeNull();
    first.close();
    await until('second open', () => second.hello !== null);
    expect(second.state).toBe('open');
    expect(sockets).toBeGreaterThanOrEqual(4);
  });

  it('joins and leaves channels on a live connection, and only resumes what it still follows', async () => {
    const cluster = await perTest.startCluster();
    const alice = await cluster.login('alice');
    const urls: string[] = [];
    const rt = perTest.track(
      connect<Events>(cluster.url, { WebSocket: browserWebSocket(alice.cookie, (u) => urls.push(u)), backoff: fast }),
    );
    const a = recorder(rt, 'room:a'); // before the socket exists: rides in the connect URL
    await until('open', () => rt.state === 'open' && rt.cursor('room:a') !== undefined);
    expect(new URL(urls[0] as string).searchParams.get('channels')).toBe('room:a');
    const b = recorder(rt, 'room:b'); // on the open socket: a `sub` frame
    await until('b joined', () => rt.cursor('room:b') !== undefined);

    const publisher = createPublisher<Events>(cluster.bus);
    await publisher.to('room:a').send('chat', { n: 1 });
    await publisher.to('room:b').send('chat', { n: 1 });
    await until('both', () => a.offsets.length === 1 && b.offsets.length === 1);

    rt.unsubscribe('room:a');
    await publisher.to('room:a').send('chat', { n: 2 });
    await publisher.to('room:b').send('chat', { n: 2 });
    await until('b again', () => b.offsets.length === 2);
    await sleep(50);
    expect(a.offsets).toEqual([1]);
    expect(rt.cursor('room:a')).toBeUndefined();

    cluster.balancer.cut();
    await until('reconnected', () => urls.length === 2 && rt.state === 'open');
    const params = new URL(urls[1] as string).searchParams;
    expect(params.get('channels')).toBeNull();
    expect(params.get('resume')).not.toBeNull();
    // Every followed channel's cursor, and nothing else.
    const epoch = rt.cursor('room:b')?.epoch ?? '';
    expect(params.get('resume')).toBe(encodeCursors(new Map([['room:b', { epoch, offset: 2 }]])));
  });

  it('shares presence across gateways, one entry per user', async () => {
    const cluster = await perTest.startCluster({ gateways: 2 });
    const alice = await cluster.login('alice');
    const bob = await cluster.login('bob');
    const alicePresence: string[][] = [];
    const rtA = perTest.track(connect(cluster.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast }));
    rtA.presence('room:p', (users) => alicePresence.push(users));
    await until('alice in', () => alicePresence.at(-1)?.join() === 'alice');
    const rtB = perTest.track(connect(cluster.url, { WebSocket: browserWebSocket(bob.cookie), backoff: fast }));
    const rtB2 = perTest.track(connect(cluster.url, { WebSocket: browserWebSocket(bob.cookie), backoff: fast })); // second tab
    const bobPresence: string[][] = [];
    rtB.presence('room:p', (users) => bobPresence.push(users));
    rtB2.presence('room:p', () => {});
    await until(
      'both see both',
      () => alicePresence.at(-1)?.join() === 'alice,bob' && bobPresence.at(-1)?.join() === 'alice,bob',
    );
    expect(new Set([rtA.hello?.gateway, rtB.hello?.gateway, rtB2.hello?.gateway]).size).toBe(2);
    rtB.close();
    await sleep(100);
    expect(alicePresence.at(-1)).toEqual(['alice', 'bob']); // bob's other tab is still there
    rtB2.close();
    await until('bob gone', () => alicePresence.at(-1)?.join() === 'alice');
  });

  it('drops a silent connection (blackholed network) and resumes on a new one', async () => {
    const cluster = await perTest.startCluster();
    const alice = await cluster.login('alice');
    const codes: number[] = [];
    const rt = perTest.track(
      connect<Events>(cluster.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast, pingMs: 1000 }),
    );
    rt.on('state', (s, d) => {
      if (s === 'reconnecting' && d.code !== undefined) codes.push(d.code);
    });
    const room = recorder(rt, 'room:silent');
    await until('subscribed', () => rt.cursor('room:silent') !== undefined);
    cluster.balancer.freeze();
    const publisher = createPublisher<Events>(cluster.bus);
    for (let n = 1; n <= 5; n++) await publisher.to('room:silent').send('chat', { n });
    await until('messages after the partition', () => room.offsets.length === 5, 6000);
    expect(codes).toEqual([CloseCode.Timeout]);
    expect(room.offsets).toEqual(range(1, 5));
  });

  it('backs off with full jitter from the injected random, and resets after a stable connection', async () => {
    const cluster = await perTest.startCluster();
    const alice = await cluster.login('alice');
    cluster.balancer.refuse(true);
    const times: number[] = [];
    const rt = perTest.track(
      connect(cluster.url, {
        transport: 'websocket',
        WebSocket: browserWebSocket(alice.cookie, () => times.push(Date.now())),
        backoff: { base: 40, cap: 160, stableMs: 150 },
        random: () => 0.999,
      }),
    );
    await until('5 attempts', () => times.length >= 5, 5000);
    const gaps = times.slice(1, 5).map((t, i) => t - (times[i] as number));
    const windows = [40, 80, 160, 160].map((w) => Math.floor(w * 0.999));
    gaps.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual((windows[i] as number) - 2);
      expect(gap).toBeLessThan((windows[i] as number) + 250);
    });
    cluster.balancer.refuse(false);
    await until('open', () => rt.state === 'open');
    await sleep(200); // stable: the next failure starts from the first window again
    cluster.balancer.refuse(true);
    const mark = times.length;
    let droppedAt = 0;
    rt.on('state', (s) => {
      if (s === 'reconnecting' && !droppedAt) droppedAt = Date.now();
    });
    cluster.balancer.cut();
    await until('2 more attempts', () => times.length >= mark + 2, 5000);
    const first = (times[mark] as number) - droppedAt;
    expect(first).toBeGreaterThanOrEqual(39 - 2);
    expect(first).toBeLessThan(159); // attempt 0 again, not attempt 5
    expect((times[mark + 1] as number) - (times[mark] as number)).toBeGreaterThanOrEqual(79 - 2);
  });

  it('rejects misuse up front and reports gateway refusals as error events', async () => {
    expect(() => connect('ws://127.0.0.1:1/')).toThrow(/pass options.WebSocket/); // Node 20 has no WebSocket
    expect(() => connect('ftp://x/', { WebSocket: browserWebSocket('') })).toThrow(/http\(s\) or ws\(s\)/);
    const cluster = await perTest.startCluster();
    const alice = await cluster.login('alice');
    const rt = perTest.track(connect(cluster.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast }));
    expect(() => rt.subscribe('bad channel!', () => {})).toThrow(TypeError);
    const errors: RealtimeError[] = [];
    rt.on('error', (e) => errors.push(e));
    rt.subscribe('user:bob', () => {});
    await until('refusal', () => errors.length === 1);
    expect(errors[0]).toMatchObject({ name: 'RealtimeError', code: 'forbidden', channel: 'user:bob' });
    expect(rt.state).toBe('open');
  });
});
