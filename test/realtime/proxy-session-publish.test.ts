import { randomUUID } from 'node:crypto';
import { createPublisher } from 'shoal';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeCursors, type ServerMessage } from '../../src/protocol/index.js';
import { sessionChannel } from '../../src/realtime/publisher.js';
import { isMsg, ORIGIN, type RunningGateway, sleep, until } from './fixture.js';
import { proxySessionGateways, serverCall } from './proxy-session-cluster.js';
import { openSse, type SseStream, type TestClient } from './ws-client.js';

/**
 * A backend that keeps its own sessions (a Python or Java app) names its session id in the connect
 * proxy's answer; a publish addressed to that session (`realtime.to({ session })`, POST /publish
 * {session}) then reaches the connections it named, on every gateway, over WebSocket and SSE, in
 * order and resumable on another gateway, as it reaches a cookie connection's shoal session.
 */
const { skip, cluster, gateways } = await proxySessionGateways((sid) => ({
  user: sid.split('.')[0],
  session: `py-${sid}`,
}));
let gw1: RunningGateway;
let gw2: RunningGateway;
beforeAll(() => {
  [gw1, gw2] = gateways as [RunningGateway, RunningGateway];
});
const publish = (g: RunningGateway, body: unknown) => serverCall(g, '/publish', body);

const sse = (g: RunningGateway, sid: string, headers: Record<string, string> = {}) =>
  openSse(`${g.http}/sse`, { cookie: `APPSID=${sid}`, origin: ORIGIN, ...headers });

const framesOf = (s: SseStream): ServerMessage[] => s.events.map((e) => JSON.parse(e.data) as ServerMessage);
const numbers = (frames: ServerMessage[], channel: string) =>
  frames.filter(isMsg(channel)).map((m) => [m.offset, (m.data as { i: number }).i]);
const isSubscribed = (channel: string) => (m: ServerMessage) => m.type === 'subscribed' && m.channel === channel;

/** Waits until the WebSocket and the SSE stream each have as many of `channel`'s messages as `expected`, then compares both. */
async function expectOnBoth(ws: TestClient, stream: SseStream, channel: string, expected: number[][], what: string) {
  await until(() => numbers(ws.messages, channel).length === expected.length, 3000, `${what} over WebSocket`);
  await until(() => numbers(framesOf(stream), channel).length === expected.length, 3000, `${what} over SSE`);
  expect(numbers(ws.messages, channel)).toEqual(expected);
  expect(numbers(framesOf(stream), channel)).toEqual(expected);
}

/** Each run uses its own app session ids, so its session channels start empty (offset 1). */
const fresh = (user: string) => `${user}.${randomUUID().slice(0, 8)}`;

describe.skipIf(skip)('publishing to a connect-proxy session', () => {
  it('reaches its WebSocket and SSE connections on both gateways, in order, and nobody else', async () => {
    const laptop = fresh('ann');
    const phone = fresh('ann');
    const channel = sessionChannel(`py-${laptop}`);
    const ws = await cluster.client(gw1.url, `APPSID=${laptop}`);
    const other = await cluster.client(gw1.url, `APPSID=${phone}`);
    const stream = await sse(gw2, laptop);
    expect(await ws.waitFor((m) => m.type === 'hello')).toMatchObject({ channels: [channel, 'user:ann'] });
    await ws.waitFor(isSubscribed(channel));
    await stream.waitFor((e) => isSubscribed(channel)(JSON.parse(e.data) as ServerMessage));

    const publisher = createPublisher(gw1.bus);
    for (let i = 1; i <= 3; i++) await publisher.to({ session: `py-${laptop}` }).send('n', { i });
    const res = await publish(gw2, { session: `py-${laptop}`, event: 'n', data: { i: 4 } });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ channel, offset: 4 });

    const all = [
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ];
    await expectOnBoth(ws, stream, channel, all, 'four messages');
    // The same user's other device has a session channel of its own.
    await sleep(200);
    expect(other.messages.filter((m) => m.type === 'msg')).toEqual([]);
    stream.close();
  });

  it('resumes on the other gateway with exactly what was missed, over WebSocket and SSE', async () => {
    const sid = fresh('bea');
    const session = `py-${sid}`;
    const channel = sessionChannel(session);
    const publisher = createPublisher(gw2.bus);
    const first = await cluster.client(gw1.url, `APPSID=${sid}`);
    const firstSse = await sse(gw1, sid);
    await first.waitFor(isSubscribed(channel));
    await firstSse.waitFor((e) => isSubscribed(channel)(JSON.parse(e.data) as ServerMessage));
    await publisher.to({ session }).send('n', { i: 1 });
    const last = await first.waitFor(isMsg(channel));
    const lastEvent = await firstSse.waitFor((e) => isMsg(channel)(JSON.parse(e.data) as ServerMessage));
    first.close();
    await first.closed;
    firstSse.close();
    await firstSse.ended;
    for (let i = 2; i <= 4; i++) await publisher.to({ session }).send('n', { i });

    const resume = encodeCursors(new Map([[channel, { epoch: last.epoch, offset: last.offset }]]));
    const second = await cluster.client(`${gw2.url}?resume=${resume}`, `APPSID=${sid}`);
    expect(await second.waitFor(isSubscribed(channel))).toMatchObject({ recovered: true, offset: 1 });
    const secondSse = await sse(gw2, sid, { 'last-event-id': lastEvent.id as string });
    const ack = await secondSse.waitFor((e) => isSubscribed(channel)(JSON.parse(e.data) as ServerMessage));
    expect(JSON.parse(ack.data)).toMatchObject({ recovered: true, offset: 1 });

    await publisher.to({ session }).send('n', { i: 5 });
    const rest = [
      [2, 2],
      [3, 3],
      [4, 4],
      [5, 5],
    ];
    await expectOnBoth(second, secondSse, channel, rest, 'the replay and one more');
    secondSse.close();
  });

  it('lets a connection ask for its session channel by name again, but not for another session’s', async () => {
    const sid = fresh('cy');
    const mine = sessionChannel(`py-${sid}`);
    const theirs = sessionChannel(`py-${fresh('cy')}`);
    const c: TestClient = await cluster.client(`${gw2.url}?channels=${mine},${theirs}`, `APPSID=${sid}`);
    await c.waitFor(isSubscribed(mine));
    expect(await c.waitFor((m) => m.type === 'error' && m.channel === theirs)).toMatchObject({ code: 'forbidden' });
  });

  it('POST /publish answers 400 for a session that is not a string, or given with a channel', async () => {
    const bad = await publish(gw1, { session: 42, event: 'n' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'session must be a non-empty string: the raw session id' });
    const both = await publish(gw1, { session: 'py-x', channel: 'room:1', event: 'n' });
    expect(both.status).toBe(400);
    expect(await both.json()).toEqual({
      error: 'give one of "channel", "channels" or "session", not channel and session',
    });
  });
});
