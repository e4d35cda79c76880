import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { redisBus } from '../../src/bus/redis.js';
import { RpcError } from '../../src/index.js';
import type { ServerMessage } from '../../src/protocol/index.js';
import type { GatewayOptions } from '../../src/realtime/gateway.js';
import { memoryStore } from '../../src/stores/memory.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { realtimeCluster } from './fixture.js';
import { appServer, cleanupAfterEach, json } from './proxy-helpers.js';
import type { TestClient } from './ws-client.js';

/**
 * Client → server RPC on a gateway over a real Redis bus: in-process handlers, the RPC proxy
 * against a real local HTTP app, and the size, rate and in-flight bounds. Every error reply is
 * counted, and the connection (and everyone else's) keeps serving.
 */
const skip = await engineSkipReason('redis');
const cleanup = cleanupAfterEach();

const isReply = (id: number) => (m: ServerMessage) => m.type === 'reply' && m.id === id;

async function setup(extra: Partial<GatewayOptions> = {}) {
  const ns = `rpc-${randomUUID().slice(0, 8)}`;
  const rt = realtimeCluster({
    store: memoryStore(),
    openBus: () => redisBus({ url: ENGINE_URLS.redis, namespace: ns }),
  });
  cleanup.push(() => rt.close());
  const gw = await rt.gateway({
    rpc: {
      whoami: (ctx) => ({ user: ctx.user, session: ctx.session, connection: ctx.connection, gateway: ctx.gateway }),
      echo: (_ctx, data) => data,
      refuse: () => {
        throw new RpcError('bad_input', 'name is required');
      },
      crash: () => {
        throw new Error('secret database detail');
      },
      slow: () => new Promise((r) => setTimeout(() => r('late'), 500)),
      announce: async (ctx, data) => {
        const sent = await ctx.realtime.to('room:news').send('said', data);
        return sent.offset;
      },
    },
    ...extra,
  });
  const client = async (user: string) => {
    const c = await rt.client(gw.url, (await rt.login(user)).cookie);
    await c.waitFor((m) => m.type === 'hello');
    return c;
  };
  const metric = async (text: string) => (await gw.gateway.metrics.render()).includes(text);
  return { rt, gw, client, metric };
}

async function call(c: TestClient, id: number, method: string, data?: unknown) {
  c.send({ type: 'rpc', id, method, data });
  return c.waitFor(isReply(id));
}

describe.skipIf(skip)('rpc', () => {
  it('an in-process handler answers with the caller, its errors are replies, unknown methods not_found', async () => {
    const { client, gw, metric } = await setup();
    const alice = await client('alice');
    const hello = alice.messages.find((m) => m.type === 'hello') as Extract<ServerMessage, { type: 'hello' }>;
    const who = await call(alice, 1, 'whoami');
    expect(who).toEqual({
      type: 'reply',
      id: 1,
      result: { user: 'alice', session: hello.session, connection: expect.any(String), gateway: gw.gateway.id },
    });
    expect(await call(alice, 2, 'echo', { a: [1, 'x'] })).toEqual({ type: 'reply', id: 2, result: { a: [1, 'x'] } });
    expect(await call(alice, 3, 'refuse')).toEqual({
      type: 'reply',
      id: 3,
      error: { code: 'bad_input', message: 'name is required' },
    });
    const crashed = await call(alice, 4, 'crash');
    expect(crashed).toMatchObject({ error: { code: 'internal' } });
    expect(JSON.stringify(crashed)).not.toContain('secret');
    expect(await call(alice, 5, 'nope')).toMatchObject({ error: { code: 'not_found' } });
    expect(await metric('shoal_gateway_request_errors_total{type="rpc",code="internal"} 1')).toBe(true);
    expect(await metric('shoal_gateway_request_errors_total{type="rpc",code="not_found"} 1')).toBe(true);
  });

  it('a handler publishes through ctx.realtime; a slow one does not hold up the frames behind it', async () => {
    const { client } = await setup();
    const alice = await client('alice');
    alice.send({ type: 'sub', channel: 'room:news' });
    await alice.waitFor((m) => m.type === 'subscribed');
    alice.send({ type: 'rpc', id: 1, method: 'slow' });
    expect(await call(alice, 2, 'announce', { hi: 1 })).toMatchObject({ result: 1 });
    await alice.waitFor((m) => m.type === 'msg' && m.event === 'said');
    expect(alice.messages.some(isReply(1))).toBe(false);
    expect(await alice.waitFor(isReply(1))).toMatchObject({ result: 'late' });
  });

  it('a malformed request with an id is answered bad_request', async () => {
    const { client } = await setup();
    const alice = await client('alice');
    alice.send({ type: 'rpc', id: 9, method: '' });
    expect(await alice.waitFor(isReply(9))).toMatchObject({ error: { code: 'bad_request' } });
  });

  it('over the size bound → too_big, over the rate → rate_limited; the socket and others keep serving', async () => {
    const { client, metric } = await setup({ requestLimits: { maxBytes: 1024, perSecond: 2 } });
    const alice = await client('alice');
    const bob = await client('bob');
    expect(await call(alice, 1, 'echo', 'x'.repeat(2000))).toMatchObject({ error: { code: 'too_big' } });
    expect(await metric('shoal_gateway_request_errors_total{type="rpc",code="too_big"} 1')).toBe(true);
    // A burst of 4 is allowed (twice the rate), plus what refills while the 15 are read (2 a second).
    for (let id = 100; id < 115; id++) alice.send({ type: 'rpc', id, method: 'echo', data: id });
    const replies = await Promise.all(Array.from({ length: 15 }, (_, i) => alice.waitFor(isReply(100 + i))));
    const limited = replies.filter((r) => 'error' in r && r.error.code === 'rate_limited').length;
    expect(limited).toBeGreaterThanOrEqual(8);
    expect(limited).toBeLessThanOrEqual(11);
    expect(await metric(`shoal_gateway_request_errors_total{type="rpc",code="rate_limited"} ${limited}`)).toBe(true);
    expect(await call(bob, 1, 'echo', 'b')).toMatchObject({ result: 'b' });
    await new Promise((r) => setTimeout(r, 600));
    expect(await call(alice, 200, 'echo', 'again')).toMatchObject({ result: 'again' });
    expect(alice.ws.readyState).toBe(alice.ws.OPEN);
  });

  it('a handler slower than handlerTimeoutMs → unavailable, and its in-flight slot is free again', async () => {
    const { client, metric } = await setup({ requestLimits: { handlerTimeoutMs: 100, maxInFlight: 1 } });
    const alice = await client('alice');
    expect(await call(alice, 1, 'slow')).toMatchObject({ error: { code: 'unavailable' } });
    expect(await call(alice, 2, 'echo', 'free')).toMatchObject({ result: 'free' });
    expect(await metric('shoal_gateway_request_errors_total{type="rpc",code="unavailable"} 1')).toBe(true);
  });

  it('over the in-flight bound → rate_limited', async () => {
    const { client } = await setup({ requestLimits: { maxInFlight: 2 } });
    const alice = await client('alice');
    for (let id = 1; id <= 3; id++) alice.send({ type: 'rpc', id, method: 'slow' });
    expect(await alice.waitFor(isReply(3))).toMatchObject({ error: { code: 'rate_limited' } });
    expect(await alice.waitFor(isReply(1), 2000)).toMatchObject({ result: 'late' });
  });
});

describe.skipIf(skip)('rpc proxy', () => {
  async function proxied() {
    const app = await appServer((req, res, body) => {
      const { method, data } = JSON.parse(body) as { method: string; data: unknown };
      if (method === 'slowly') return setTimeout(() => json(res, { result: 'late' }), 2500);
      if (method === 'junk') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end('{"result":');
      }
      if (method === 'deny') return json(res, { error: { code: 'forbidden', message: 'not yours' } });
      json(res, { result: { data, cookie: req.headers.cookie ?? null, agent: req.headers['x-agent'] ?? null } });
    });
    cleanup.push(() => app.close());
    // 1 s: room for a first call on a loaded machine, well under the slow method's 2.5 s.
    const s = await setup({ rpcProxy: { url: app.url, timeoutMs: 1000, headers: ['x-agent'] } });
    return { app, ...s };
  }

  it('methods without a handler go to the app with the caller and its forwarded cookie', async () => {
    const { app, client, gw } = await proxied();
    const alice = await client('alice');
    const hello = alice.messages.find((m) => m.type === 'hello') as Extract<ServerMessage, { type: 'hello' }>;
    const r = await call(alice, 1, 'orders.list', { page: 2 });
    expect(r).toMatchObject({ result: { data: { page: 2 }, cookie: expect.stringContaining('=') } });
    expect(JSON.parse(app.seen[0]?.body ?? '{}')).toEqual({
      method: 'orders.list',
      data: { page: 2 },
      user: 'alice',
      session: hello.session,
      connection: expect.any(String),
      gateway: gw.gateway.id,
    });
    expect(await call(alice, 2, 'deny')).toEqual({
      type: 'reply',
      id: 2,
      error: { code: 'forbidden', message: 'not yours' },
    });
    // In-process handlers win over the proxy.
    expect(await call(alice, 3, 'echo', 'here')).toMatchObject({ result: 'here' });
    expect(app.seen).toHaveLength(2);
  });

  it.each([
    ['slowly', 'timeout'],
    ['junk', 'malformed'],
  ])('%s → unavailable, counted, the socket keeps serving', async (method, reason) => {
    const { client, metric } = await proxied();
    const alice = await client('alice');
    expect(await call(alice, 1, method)).toMatchObject({ error: { code: 'unavailable' } });
    expect(await metric(`shoal_gateway_rpc_proxy_failures_total{reason="${reason}"} 1`)).toBe(true);
    expect(await metric('shoal_gateway_request_errors_total{type="rpc",code="unavailable"} 1')).toBe(true);
    expect(await call(alice, 2, 'fine', 1)).toMatchObject({ result: { data: 1 } });
  });

  it('an app that is down → unavailable (unreachable)', async () => {
    const app = await appServer(() => {});
    await app.close();
    const { client, metric } = await setup({ rpcProxy: { url: app.url, timeoutMs: 300 } });
    const alice = await client('alice');
    expect(await call(alice, 1, 'anything')).toMatchObject({ error: { code: 'unavailable' } });
    expect(await metric('shoal_gateway_rpc_proxy_failures_total{reason="unreachable"} 1')).toBe(true);
  });
});
