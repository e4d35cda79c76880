import { describe, expect, it } from 'vitest';
import { CloseCode, connect, type ShoalClient } from '../../src/client/index.js';
import { decodeCursors } from '../../src/protocol/index.js';
import { createPublisher } from '../../src/realtime/publisher.js';
import { createRealtime } from '../../src/realtime/realtime.js';
import { eventSourceWith } from './event-source.js';
import {
  browserWebSocket,
  closedAfterEachTest,
  drainItsGatewayWhilePublishing,
  fast,
  ORIGIN,
  sleep,
  until,
} from './harness.js';

type Events = { chat: { n: number } };

const perTest = closedAfterEachTest();

function record(client: ShoalClient<Events>, channel: string): number[] {
  const offsets: number[] = [];
  client.subscribe(channel, (m) => offsets.push(m.offset));
  return offsets;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('client SDK over SSE', () => {
  it('falls back to SSE when WebSocket is blocked, follows channel changes, resumes with Last-Event-ID', async () => {
    const cluster = await perTest.startCluster();
    cluster.balancer.blockWebSocket(true); // a proxy that kills upgrade requests
    const alice = await cluster.login('alice');
    let sockets = 0;
    const streams: { url: string; lastEventId: string }[] = [];
    const rt = connect<Events>(cluster.url, {
      WebSocket: browserWebSocket(alice.cookie, () => sockets++),
      EventSource: eventSourceWith({ cookie: alice.cookie, origin: ORIGIN }, (url, lastEventId) =>
        streams.push({ url, lastEventId }),
      ),
      sseAfterFailures: 2,
      backoff: fast,
    });
    perTest.track(rt as unknown as ShoalClient);
    const a = record(rt, 'room:a');
    await until('open over SSE', () => rt.state === 'open' && rt.cursor('room:a') !== undefined);
    expect(rt.transport).toBe('sse');
    expect(sockets).toBe(2);
    expect(new URL(streams[0]?.url as string).pathname).toBe('/sse');

    const publisher = createPublisher<Events>(cluster.bus);
    for (let n = 1; n <= 10; n++) await publisher.to('room:a').send('chat', { n });
    await until('10 on a', () => a.length === 10);

    // SSE is one-way: a new channel reopens the stream, from the cursors.
    const b = record(rt, 'room:b');
    await until('b joined', () => rt.cursor('room:b') !== undefined);
    const reopened = new URL(streams.at(-1)?.url as string).searchParams;
    expect(decodeCursors(reopened.get('resume') ?? '').get('room:a')?.offset).toBe(10);
    expect(reopened.get('channels')).toBe('room:b');

    // A dropped stream: the EventSource reconnects by itself, sending Last-Event-ID.
    const before = streams.length;
    for (let n = 11; n <= 40; n++) {
      await publisher.to('room:a').send('chat', { n });
      await publisher.to('room:b').send('chat', { n: n - 10 });
      if (n === 20) cluster.balancer.cut();
      await sleep(5);
    }
    await until('everything', () => a.length === 40 && b.length === 30, 8000);
    await sleep(100);
    expect(a).toEqual(range(1, 40));
    expect(b).toEqual(range(1, 30));
    const retry = streams[before];
    expect(retry?.url).toBe(streams[before - 1]?.url); // the browser's own retry: same URL…
    expect(decodeCursors(retry?.lastEventId).get('room:a')?.offset).toBeGreaterThanOrEqual(10); // …plus Last-Event-ID
    expect(rt.transport).toBe('sse');
  });

  it('forced SSE: presence, and the end of the session stops it (4001)', async () => {
    const cluster = await perTest.startCluster();
    const realtime = createRealtime({ bus: cluster.bus, sessions: cluster.sessions });
    const alice = await cluster.login('alice');
    const bob = await cluster.login('bob');
    let streams = 0;
    const rt = connect(cluster.url, {
      transport: 'sse',
      EventSource: eventSourceWith({ cookie: alice.cookie }, () => streams++),
      backoff: fast,
    });
    perTest.track(rt);
    const rtBob = connect(cluster.url, { WebSocket: browserWebSocket(bob.cookie), backoff: fast });
    perTest.track(rtBob);
    const seen: string[][] = [];
    rt.presence('room:p', (users) => seen.push(users));
    rtBob.subscribe('room:p', () => {});
    await until('both present', () => seen.at(-1)?.join() === 'alice,bob');
    const idle = streams;
    await sleep(300);
    expect(streams).toBe(idle); // a settled SSE client does not reopen its stream
    expect(idle).toBeLessThanOrEqual(2);

    const codes: number[] = [];
    rt.on('state', (_state, d) => {
      if (d.code !== undefined) codes.push(d.code);
    });
    await cluster.sessions.destroySession(alice.id);
    await until('ended', () => rt.state === 'ended');
    expect(codes).toEqual([CloseCode.SessionEnded]);
    const count = streams;
    await sleep(1500); // longer than the stream's `retry: 1000`
    expect(streams).toBe(count);
    expect(rtBob.state).toBe('open');
    await realtime.close();
  });

  it('forced SSE without a session: the close event (4401) ends it, and nothing retries', async () => {
    const cluster = await perTest.startCluster();
    let streams = 0;
    const rt = connect(cluster.url, {
      transport: 'sse',
      EventSource: eventSourceWith({ origin: ORIGIN }, () => streams++),
      backoff: fast,
    });
    perTest.track(rt);
    const codes: number[] = [];
    rt.on('state', (_state, d) => {
      if (d.code !== undefined) codes.push(d.code);
    });
    await until('ended', () => rt.state === 'ended');
    expect(codes).toEqual([CloseCode.Unauthorized]);
    await sleep(1500); // longer than the stream's `retry: 1000`
    expect(streams).toBe(1);
    expect(rt.state).toBe('ended');
  });

  it('an SSE stream over the connection limit (4429) reconnects with backoff and gets in once a slot frees up', async () => {
    const cluster = await perTest.startCluster({ gateways: 0 });
    await cluster.startGateway({ maxConnectionsPerSession: 1 });
    const alice = await cluster.login('alice');
    const first = connect(cluster.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast });
    perTest.track(first);
    await until('first open', () => first.hello !== null);
    const codes: number[] = [];
    let streams = 0;
    const second = connect(cluster.url, {
      transport: 'sse',
      EventSource: eventSourceWith({ cookie: alice.cookie }, () => streams++),
      backoff: fast,
    });
    perTest.track(second);
    second.on('state', (s, d) => {
      if (s === 'reconnecting' && d.code !== undefined) codes.push(d.code);
    });
    // Each attempt is refused with 4429 and retried; the state stays "reconnecting" throughout.
    await until('two attempts', () => streams >= 2);
    expect(codes.length).toBeGreaterThanOrEqual(1);
    expect(new Set(codes)).toEqual(new Set([CloseCode.TooManyConnections]));
    expect(second.state).toBe('reconnecting');
    first.close();
    await until('second open', () => second.hello !== null);
    expect(second.state).toBe('open');
  });

  it('a draining gateway (1012) sends an SSE client to another gateway with its cursors', async () => {
    const cluster = await perTest.startCluster({ gateways: 2 });
    const alice = await cluster.login('alice');
    const rt = connect<Events>(cluster.url, {
      transport: 'sse',
      EventSource: eventSourceWith({ cookie: alice.cookie }),
      backoff: fast,
    });
    perTest.track(rt as unknown as ShoalClient);
    const offsets = record(rt, 'room:d');
    await until('subscribed', () => rt.cursor('room:d') !== undefined && rt.hello !== null);
    const first = await drainItsGatewayWhilePublishing(cluster, rt, 'room:d', 10, 30);
    await until('everything', () => offsets.length === 30, 8000);
    await until('moved', () => rt.state === 'open' && rt.hello?.gateway !== first);
    expect(offsets).toEqual(range(1, 30));
  });
  it('a silently dead stream (no FIN, no RST) is noticed from the missing ping events and resumed', async () => {
    const cluster = await perTest.startCluster({ gateways: 0 });
    await cluster.startGateway({ heartbeatMs: 300 }); // a ping event every 300 ms: 750 ms of silence is too much
    const alice = await cluster.login('alice');
    const streams: string[] = [];
    const codes: number[] = [];
    const rt = connect<Events>(cluster.url, {
      transport: 'sse',
      EventSource: eventSourceWith({ cookie: alice.cookie }, (url) => streams.push(url)),
      backoff: fast,
    });
    perTest.track(rt as unknown as ShoalClient);
    rt.on('state', (s, d) => {
      if (s === 'reconnecting' && d.code !== undefined) codes.push(d.code);
    });
    const offsets = record(rt, 'room:quiet');
    await until('subscribed', () => rt.cursor('room:quiet') !== undefined && rt.state === 'open');
    const publisher = createPublisher<Events>(cluster.bus);
    for (let n = 1; n <= 5; n++) await publisher.to('room:quiet').send('chat', { n });
    await until('first five', () => offsets.length === 5);

    // Quiet but alive: the pings count as life, nothing is reopened.
    const opened = streams.length;
    await sleep(2000);
    expect(streams.length).toBe(opened);
    expect(codes).toEqual([]);

    // A partition that says nothing: the stream stays "open" for the EventSource forever.
    cluster.balancer.freeze();
    const frozenAt = Date.now();
    for (let n = 6; n <= 10; n++) await publisher.to('room:quiet').send('chat', { n });
    await until('reopened', () => streams.length > opened, 5000);
    const noticedAfter = Date.now() - frozenAt;
    await until('the five sent during the partition', () => offsets.length === 10, 5000);
    expect(offsets).toEqual(range(1, 10));
    expect(codes).toEqual([CloseCode.Timeout]);
    // 2.5 periods of 300 ms, plus up to one period since the last ping, plus scheduling slack.
    expect(noticedAfter).toBeLessThan(750 + 300 + 500);
    // The new stream carries the cursor: a resume, not a fresh join.
    expect(
      decodeCursors(new URL(streams.at(-1) as string).searchParams.get('resume') ?? '').get('room:quiet')?.offset,
    ).toBe(5);
  });

  it('sseTimeoutMs overrides the bound the gateway announces', async () => {
    const cluster = await perTest.startCluster({ gateways: 0 });
    await cluster.startGateway({ heartbeatMs: 60_000 }); // no ping during this test
    const alice = await cluster.login('alice');
    const streams: number[] = [];
    const rt = connect<Events>(cluster.url, {
      transport: 'sse',
      EventSource: eventSourceWith({ cookie: alice.cookie }, () => streams.push(Date.now())),
      backoff: fast,
      sseTimeoutMs: 1000,
    });
    perTest.track(rt as unknown as ShoalClient);
    const offsets = record(rt, 'room:bound');
    await until('subscribed', () => rt.cursor('room:bound') !== undefined);
    cluster.balancer.freeze();
    const publisher = createPublisher<Events>(cluster.bus);
    await publisher.to('room:bound').send('chat', { n: 1 });
    await until('resumed after the bound', () => offsets.length === 1, 5000);
    expect(streams.length).toBe(2);
    expect((streams[1] as number) - (streams[0] as number)).toBeGreaterThanOrEqual(1000);
  });
});
