import { describe, expect, it } from 'vitest';
import { connect, type FetchLike, RealtimeError } from '../../src/client/index.js';
import { RpcError } from '../../src/index.js';
import { eventSourceWith } from './event-source.js';
import { browserWebSocket, closedAfterEachTest, fast, ORIGIN, until } from './harness.js';

/** The SDK's requests (`rpc`, `publish`, `history`, `presenceInfo`) against real gateways, over WebSocket and over SSE. */
const perTest = closedAfterEachTest();

const rpc = {
  add: (_ctx: unknown, data: unknown) => {
    const { a, b } = data as { a: number; b: number };
    return a + b;
  },
  me: (ctx: { user: string | null }) => ctx.user,
  refuse: () => {
    throw new RpcError('out_of_stock', 'sold out');
  },
  slow: () => new Promise((r) => setTimeout(() => r('late'), 1000)),
};

async function start() {
  const cluster = await perTest.startCluster({ gateways: 0 });
  await cluster.startGateway({
    rpc,
    canPublish: (_ctx, channel, event) => channel.startsWith('room:') && event === 'typing',
    connectionInfo: (who) => ({ name: `${who.userId ?? 'nobody'} (${who.source})` }),
  });
  return cluster;
}

/** The cookie a browser would attach to a same-origin fetch, and the Origin it sends with a POST. */
function fetchWith(cookie: string, paths: string[] = []): FetchLike {
  return (url, init) => {
    paths.push(new URL(url).pathname);
    return fetch(url, { ...init, headers: { ...init.headers, cookie, origin: ORIGIN } });
  };
}

async function rejection(p: Promise<unknown>): Promise<RealtimeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RealtimeError);
  return err as RealtimeError;
}

describe('client requests', () => {
  it('rpc over WebSocket: a result, an app error with its code, a timeout', async () => {
    const c = await start();
    const alice = await c.login('alice');
    const rt = connect(c.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast });
    perTest.track(rt);
    // Sent before the socket opened: it waits for it.
    expect(await rt.rpc('add', { a: 2, b: 3 })).toBe(5);
    expect(rt.transport).toBe('websocket');
    expect(await rt.rpc('me')).toBe('alice');
    const refused = await rejection(rt.rpc('refuse'));
    expect([refused.code, refused.message]).toEqual(['out_of_stock', 'sold out']);
    expect((await rejection(rt.rpc('nope'))).code).toBe('not_found');
    expect((await rejection(rt.rpc('slow', null, { timeoutMs: 100 }))).code).toBe('timeout');
  });

  it("rpc, publish and history over SSE go as POSTs to the stream's own path", async () => {
    const c = await start();
    c.balancer.blockWebSocket(true);
    const alice = await c.login('alice');
    const posted: string[] = [];
    const rt = connect(c.url, {
      WebSocket: browserWebSocket(alice.cookie),
      EventSource: eventSourceWith({ cookie: alice.cookie, origin: ORIGIN }),
      fetch: fetchWith(alice.cookie, posted),
      sseAfterFailures: 1,
      backoff: fast,
    });
    perTest.track(rt);
    const seen: string[] = [];
    rt.subscribe('room:1', (m) => seen.push(m.event));
    await until('open over SSE', () => rt.state === 'open' && rt.cursor('room:1') !== undefined);
    expect(rt.transport).toBe('sse');
    expect(await rt.rpc('add', { a: 1, b: 1 })).toBe(2);
    expect((await rejection(rt.rpc('refuse'))).code).toBe('out_of_stock');
    expect(await rt.publish('room:1', 'typing', { on: true })).toMatchObject({ offset: 1 });
    await until('own typing event', () => seen.includes('typing'));
    expect((await rejection(rt.publish('room:1', 'chat', 'hi'))).code).toBe('forbidden');
    const h = (await rt.history('room:1', { limit: 5 })) as { messages: { event: string }[]; complete: boolean };
    expect(h.messages.map((m) => m.event)).toEqual(['typing']);
    expect(h.complete).toBe(true);
    // Who is here: the SSE stream itself, with the info the app lets it show.
    expect(await rt.presenceInfo('room:1')).toEqual({
      clients: [{ user: 'alice', connection: expect.any(String), info: { name: 'alice (cookie)' } }],
      complete: true,
    });
    expect(posted.length).toBeGreaterThan(5);
    expect(new Set(posted)).toEqual(new Set(['/sse']));

    // What answers instead of a gateway is named: an app's page (misrouted) or an outage.
    const answers = [
      { ok: true, status: 200, json: () => Promise.reject(new SyntaxError('Unexpected token <')) },
      { ok: false, status: 503, json: () => Promise.reject(new SyntaxError('Unexpected token n')) },
    ];
    const stray = connect(c.url, {
      WebSocket: browserWebSocket(alice.cookie),
      EventSource: eventSourceWith({ cookie: alice.cookie, origin: ORIGIN }),
      fetch: async () => answers.shift() ?? { ok: false, status: 500, json: async () => ({}) },
      sseAfterFailures: 1,
      backoff: fast,
    });
    perTest.track(stray);
    await until('second client open over SSE', () => stray.state === 'open' && stray.transport === 'sse');
    const misrouted = await rejection(stray.rpc('add', { a: 1, b: 1 }));
    expect([misrouted.code, misrouted.message]).toEqual([
      'unavailable',
      expect.stringMatching(
        /POST http:\/\/[^?]+\/sse answered 200 without a JSON reply: is this path routed to the gateways\?$/,
      ),
    ]);
    expect((await rejection(stray.rpc('add', { a: 1, b: 1 }))).message).toMatch(/\/sse answered 503$/);
  });

  it('publish and history over WebSocket; a request on a lost socket rejects with "disconnected"', async () => {
    const c = await start();
    const alice = await c.login('alice');
    const rt = connect(c.url, { WebSocket: browserWebSocket(alice.cookie), backoff: fast });
    perTest.track(rt);
    for (let n = 1; n <= 5; n++) await rt.publish('room:h', 'typing', { n });
    const last2 = await rt.history('room:h', { limit: 2 });
    expect(last2.messages.map((m) => (m.data as { n: number }).n)).toEqual([4, 5]);
    const since = await rt.history('room:h', { since: { epoch: last2.epoch, offset: 3 } });
    expect(since.messages.map((m) => m.offset)).toEqual([4, 5]);
    expect((await rejection(rt.publish('_shoal:x', 'typing'))).code).toBe('forbidden');
    // Two tabs of one user in a channel: two connections, each with its info.
    const bob = await c.login('bob');
    const tabs = [1, 2].map(() => connect(c.url, { WebSocket: browserWebSocket(bob.cookie), backoff: fast }));
    for (const tab of tabs) perTest.track(tab);
    for (const tab of tabs) tab.subscribe('room:h', () => {});
    await until('both tabs joined', () => tabs.every((t) => t.cursor('room:h') !== undefined));
    const here = await rt.presenceInfo('room:h');
    expect(here.clients.map((x) => x.info)).toEqual([{ name: 'bob (cookie)' }, { name: 'bob (cookie)' }]);
    expect(new Set(here.clients.map((x) => x.connection)).size).toBe(2);
    const pending = rejection(rt.rpc('slow'));
    for (const gw of c.gateways) await gw.close();
    expect((await pending).code).toBe('disconnected');
  });
});
