import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { redisBus } from '../../src/bus/redis.js';
import { type ClientState, connect as connectSdk, type WebSocketConstructor } from '../../src/client/index.js';
import { CloseCode, type ServerMessage } from '../../src/protocol/index.js';
import { createPublisher, type Publisher } from '../../src/realtime/publisher.js';
import { memoryStore } from '../../src/stores/memory.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import type { RunningGateway } from './fixture.js';
import { isMsg, ORIGIN, PUBLISH_KEY, realtimeCluster, sleep, subscribed, until } from './fixture.js';
import type { TestClient } from './ws-client.js';

/**
 * Server-side control of live connections, from a web node's publisher and over the HTTP server
 * API, across two gateways on a real Redis bus: disconnect a user or a session, unsubscribe them
 * from a channel, and re-run authorize for a channel's current subscribers.
 */
const skip = await engineSkipReason('redis');
const ns = `ctl-${randomUUID().slice(0, 8)}`;
/** Who may join room:vip right now; reauthorize applies changes to it. */
const vip = new Set<string>();
const cluster = realtimeCluster({
  store: memoryStore(),
  openBus: () => redisBus({ url: ENGINE_URLS.redis, namespace: ns }),
});
let gw1: RunningGateway;
let gw2: RunningGateway;
let publisher: Publisher;

/** room:slow-* takes this long to authorize: a command can land while it is decided. */
const SLOW_AUTHORIZE_MS = 300;
const authorize = async (s: { userId: string | null }, channel: string) => {
  if (channel.startsWith('room:slow-')) await sleep(SLOW_AUTHORIZE_MS);
  return channel === 'room:vip' ? vip.has(s.userId ?? '') : channel.startsWith('room:');
};

/**
 * A raw WebSocket that runs `atOpen` as the socket opens, before the gateway's hello: what a client
 * (or the app, right after a login) may do as soon as it sees the socket open.
 */
function openingWith(url: string, cookie: string, atOpen: () => Promise<void>) {
  const ws = new WebSocket(url, { headers: { cookie, origin: ORIGIN }, perMessageDeflate: false });
  const frames: ServerMessage[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as ServerMessage));
  const sent = new Promise<void>((resolve, reject) => ws.once('open', () => atOpen().then(resolve, reject)));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return { ws, frames, sent, closed };
}

beforeAll(async () => {
  if (skip) return;
  gw1 = await cluster.gateway({ authorize });
  gw2 = await cluster.gateway({ authorize });
  publisher = createPublisher(await cluster.bus());
});
afterAll(() => cluster.close());

/** One connection of `user`'s session on each gateway, both in `channel`. */
async function onBoth(cookie: string, channel: string): Promise<TestClient[]> {
  const conns = await Promise.all([gw1, gw2].map((g) => cluster.client(`${g.url}?channels=${channel}`, cookie)));
  await Promise.all(conns.map((c) => c.waitFor(subscribed(channel))));
  return conns;
}

const closedWithin = (c: TestClient, ms: number) => Promise.race([c.closed, sleep(ms).then(() => null)]);

describe.skipIf(skip)('server-side control across two gateways on a redis bus', () => {
  it('disconnects every connection of a user on both gateways with 4403; others stay', async () => {
    const alice = await cluster.login('alice');
    const aliceTab2 = await cluster.login('alice');
    const bob = await cluster.login('bob');
    const conns = [...(await onBoth(alice.cookie, 'room:a')), ...(await onBoth(aliceTab2.cookie, 'room:a'))];
    const [bobConn] = await onBoth(bob.cookie, 'room:a');
    await publisher.disconnect({ user: 'alice' });
    for (const c of conns) expect((await closedWithin(c, 3000))?.code).toBe(CloseCode.Disconnected);
    await sleep(200);
    expect(bobConn?.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('disconnects one session with the app’s code and reason; the user’s other session stays', async () => {
    const s1 = await cluster.login('carl');
    const s2 = await cluster.login('carl');
    const first = await onBoth(s1.cookie, 'room:b');
    const second = await onBoth(s2.cookie, 'room:b');
    await publisher.disconnect({ session: s1.id }, { code: 4501, reason: 'banned for a day' });
    for (const c of first) expect(await closedWithin(c, 3000)).toEqual({ code: 4501, reason: 'banned for a day' });
    await sleep(200);
    for (const c of second) expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('unsubscribes a user from a channel on both gateways: told, and no longer delivered to', async () => {
    const dora = await onBoth((await cluster.login('dora')).cookie, 'room:c');
    const [ed] = await onBoth((await cluster.login('ed')).cookie, 'room:c');
    await publisher.unsubscribe({ user: 'dora' }, 'room:c');
    for (const c of dora) {
      await c.waitFor((m) => m.type === 'unsubscribed' && m.channel === 'room:c' && m.reason !== undefined);
    }
    await publisher.to('room:c').send('after', { n: 1 });
    await ed?.waitFor(isMsg('room:c'));
    await sleep(200);
    for (const c of dora) {
      expect(c.messages.filter(isMsg('room:c'))).toEqual([]);
      expect(c.ws.readyState).toBe(WebSocket.OPEN);
    }
  });

  it('unsubscribes a connection that heard hello a moment ago and still joins its channels', async () => {
    // Thirty channels joined one after another: the last joins well after hello, when the command lands.
    const rooms = Array.from({ length: 30 }, (_, i) => `room:h${i}`);
    const last = rooms[rooms.length - 1] as string;
    const { cookie } = await cluster.login('hal');
    let sent: Promise<void> | undefined;
    const c = await cluster.client(`${gw1.url}?channels=${rooms.join(',')}`, cookie, {
      onFrame: (m) => {
        if (m.type === 'hello') sent = publisher.unsubscribe({ user: 'hal' }, last);
      },
    });
    await c.waitFor((m) => m.type === 'unsubscribed' && m.channel === last, 3000);
    await sent;
    await c.waitFor(subscribed(rooms[rooms.length - 2] as string));
    await publisher.to(last).send('after', { n: 1 });
    await publisher.to('room:h0').send('after', { n: 1 });
    await c.waitFor(isMsg('room:h0'));
    await sleep(100);
    expect(c.messages.filter(isMsg(last))).toEqual([]);
    // Told once it left, never after that it joined.
    expect(c.messages.filter((m) => m.type === 'subscribed' && m.channel === last)).toEqual([]);
  });

  it('disconnects a user whose socket just opened, before the gateway said hello', async () => {
    const runs = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const user = `ivy-${i}`;
        const { cookie } = await cluster.login(user);
        const c = openingWith(`${gw1.url}?channels=room:i`, cookie, () => publisher.disconnect({ user }));
        await c.sent;
        return Promise.race([c.closed, sleep(3000).then(() => null)]);
      }),
    );
    expect(runs).toEqual(Array.from({ length: 8 }, () => CloseCode.Disconnected));
  });

  it('unsubscribes a socket that just opened from a channel it asked for, also while that channel is authorized', async () => {
    for (const channel of ['room:j29', 'room:slow-j']) {
      const { cookie } = await cluster.login('jay');
      const rooms = [...Array.from({ length: 30 }, (_, i) => `room:j${i}`), 'room:slow-j'];
      const c = openingWith(`${gw2.url}?channels=${rooms.join(',')}`, cookie, () =>
        publisher.unsubscribe({ user: 'jay' }, channel),
      );
      await c.sent;
      await until(
        () => c.frames.some((m) => m.type === 'unsubscribed' && m.channel === channel),
        3000 + SLOW_AUTHORIZE_MS,
        `unsubscribed from ${channel}`,
      );
      const other = channel === 'room:j29' ? 'room:slow-j' : 'room:j29';
      await until(() => c.frames.some(subscribed(other)), 3000, `subscribed to ${other}`);
      await publisher.to(channel).send('after', { n: 1 });
      await publisher.to(other).send('after', { n: 1 });
      await until(() => c.frames.some(isMsg(other)), 3000, `a message on ${other}`);
      await sleep(100);
      expect(c.frames.filter((m) => 'channel' in m && m.channel === channel).map((m) => m.type)).toEqual([
        'unsubscribed',
      ]);
      expect(c.frames[0]?.type).toBe('hello');
      c.ws.terminate();
    }
  });

  it('reauthorize removes subscribers no longer allowed, now, on both gateways; allowed ones stay', async () => {
    vip.add('fay');
    vip.add('gus');
    const fay = await onBoth((await cluster.login('fay')).cookie, 'room:vip');
    const gus = await onBoth((await cluster.login('gus')).cookie, 'room:vip');
    vip.delete('fay');
    await publisher.reauthorize('room:vip');
    for (const c of fay) {
      expect(await c.waitFor((m) => m.type === 'unsubscribed' && m.channel === 'room:vip', 3000)).toMatchObject({
        reason: 'forbidden',
      });
    }
    await publisher.to('room:vip').send('secret', { n: 1 });
    for (const c of gus) await c.waitFor(isMsg('room:vip'));
    await sleep(200);
    for (const c of fay) expect(c.messages.filter(isMsg('room:vip'))).toEqual([]);
    for (const c of gus) expect(c.messages.some((m) => m.type === 'unsubscribed')).toBe(false);
  });

  it('refuses bad commands with a clear error before sending anything', async () => {
    await expect(publisher.disconnect({ user: 'x' }, { code: 1000 })).rejects.toThrow(/code must be 4403, 1012/);
    await expect(publisher.unsubscribe({ user: 'x' }, 'user:x')).rejects.toThrow(/not an app channel/);
    await expect(publisher.reauthorize('_shoal:presence')).rejects.toThrow(/not an app channel/);
    await expect(publisher.disconnect({} as never)).rejects.toThrow(/target must be/);
  });
});

describe.skipIf(skip)('the HTTP server API', () => {
  const post = (g: RunningGateway, path: string, body: unknown, key: string | null = PUBLISH_KEY) =>
    fetch(`${g.http}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    });

  it('POST /disconnect, /unsubscribe, /reauthorize need the key, check the body, and act on both gateways', async () => {
    const hal = await onBoth((await cluster.login('hal')).cookie, 'room:d');
    expect((await post(gw1, '/disconnect', { user: 'hal' }, null)).status).toBe(401);
    expect((await post(gw1, '/disconnect', { user: 'hal' }, 'wrong')).status).toBe(401);
    const bad = await post(gw1, '/disconnect', { user: 'hal', code: 1000 });
    expect(bad.status).toBe(400);
    expect((await bad.json()) as { error: string }).toMatchObject({ error: expect.stringMatching(/code must be/) });
    expect((await post(gw1, '/unsubscribe', { user: 'hal', channel: 'session:abc' })).status).toBe(400);
    expect((await post(gw1, '/reauthorize', { channel: 'no spaces allowed' })).status).toBe(400);
    const both = await post(gw1, '/disconnect', { user: 'hal', session: 'abc' });
    expect(both.status).toBe(400);
    expect((await both.json()) as { error: string }).toMatchObject({
      error: expect.stringMatching(/both a user and a session/),
    });
    await expect(publisher.disconnect({ user: 'hal', session: 'abc' } as never)).rejects.toThrow(
      /both a user and a session/,
    );

    expect((await post(gw1, '/unsubscribe', { user: 'hal', channel: 'room:d' })).status).toBe(202);
    for (const c of hal) await c.waitFor((m) => m.type === 'unsubscribed' && m.reason !== undefined);
    expect((await post(gw2, '/disconnect', { user: 'hal', code: 4599, reason: 'maintenance' })).status).toBe(202);
    for (const c of hal) expect(await closedWithin(c, 3000)).toEqual({ code: 4599, reason: 'maintenance' });
  });

  it('POST /publish refuses internal channels with 403: no made-up user appears in presence', async () => {
    const ivy = await cluster.login('ivy');
    const [c] = await onBoth(ivy.cookie, 'room:e');
    c?.send({ type: 'presence', channel: 'room:e' });
    await c?.waitFor((m) => m.type === 'presence' && m.channel === 'room:e');
    const forged = { gateway: 'gw-forged', channel: 'room:e', users: ['mallory'], join: ['mallory'] };
    const res = await post(gw1, '/publish', { channel: '_shoal:presence', event: 'presence', data: forged });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toMatch(/internal to shoal/);
    await sleep(300);
    const lists = (c?.messages ?? []).filter((m) => m.type === 'presence');
    expect(lists.flatMap((m) => (m.type === 'presence' ? m.users : []))).not.toContain('mallory');
    expect(() => publisher.to('_shoal:presence')).toThrow(/internal to shoal/);
  });
});

describe.skipIf(skip)('the browser SDK surfaces server-side control', () => {
  const browserWs = (cookie: string): WebSocketConstructor =>
    class extends WebSocket {
      constructor(url: string) {
        super(url, { headers: { cookie, origin: ORIGIN }, perMessageDeflate: false });
      }
    };

  it('emits unsubscribed (and drops the channel), then disconnected with the code, and ends', async () => {
    const { cookie } = await cluster.login('jo');
    const rt = connectSdk(gw1.url, { transport: 'websocket', WebSocket: browserWs(cookie) });
    try {
      const got: string[] = [];
      rt.subscribe('room:f', () => got.push('msg'));
      const removed: Array<[string, string]> = [];
      const disconnected: Array<[number, string]> = [];
      const states: ClientState[] = [];
      rt.on('unsubscribed', (channel, reason) => removed.push([channel, reason]));
      rt.on('disconnected', (code, reason) => disconnected.push([code, reason]));
      rt.on('state', (s) => states.push(s));
      // The cursor comes with hello, which may be before the gateway's join of room:f is done: the
      // command still finds the connection in it.
      await until(() => rt.cursor('room:f') !== undefined, 5000, 'joined room:f');
      await publisher.unsubscribe({ user: 'jo' }, 'room:f');
      await until(() => removed.length === 1, 3000, 'unsubscribed event');
      expect(removed[0]?.[0]).toBe('room:f');
      await publisher.to('room:f').send('late', {});
      await publisher.disconnect({ user: 'jo' }, { reason: 'account locked' });
      await until(() => rt.state === 'ended', 3000, 'ended');
      expect(disconnected).toEqual([[CloseCode.Disconnected, 'account locked']]);
      expect(got).toEqual([]); // not 'late'

      await sleep(500);
      expect(states.filter((s) => s === 'reconnecting')).toEqual([]);
    } finally {
      rt.close();
    }
  });
});
