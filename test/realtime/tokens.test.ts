import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type ShoalClient, connect as sdkConnect } from '../../src/client/index.js';
import { CloseCode } from '../../src/protocol/index.js';
import { createPublisher } from '../../src/realtime/publisher.js';
import { memoryStore } from '../../src/stores/memory.js';
import { isMsg, ORIGIN, realtimeCluster, subscribed, until } from './fixture.js';
import { cleanupAfterEach } from './proxy-helpers.js';
import { hsToken, jwksServer, TOKEN_SECRET } from './token-helpers.js';
import { connect, openSse } from './ws-client.js';

const cleanup = cleanupAfterEach();

async function cluster() {
  const rt = realtimeCluster({ store: memoryStore() });
  cleanup.push(() => rt.close());
  const gw = await rt.gateway({ tokens: { secret: TOKEN_SECRET } });
  return { rt, gw };
}

describe('signed connection tokens', () => {
  it('a client without a cookie connects with ?token=, joins its user channel and the channels the token grants', async () => {
    const { gw } = await cluster();
    const token = await hsToken({ sub: 'alice', channels: ['team:7'] });
    // No cookie, no Origin (a native client): the token alone lets it in.
    const c = await connect(`${gw.url}?token=${token}&channels=team:7`);
    cleanup.push(async () => c.ws.terminate());
    const hello = await c.waitFor((m) => m.type === 'hello');
    expect(hello).toMatchObject({ user: 'alice', session: null, channels: ['user:alice'] });
    expect((hello as { expires?: number }).expires).toBeGreaterThan(Date.now() / 1000);
    await c.waitFor(subscribed('team:7'));
    await createPublisher(gw.bus).to('team:7').send('note', { n: 1 });
    await createPublisher(gw.bus).to('user:alice').send('mine', { n: 2 });
    expect((await c.waitFor(isMsg('team:7'))).data).toEqual({ n: 1 });
    expect((await c.waitFor(isMsg('user:alice'))).data).toEqual({ n: 2 });
    // A channel neither granted nor allowed by authorize stays closed.
    c.send({ type: 'sub', channel: 'secret:1' });
    await c.waitFor((m) => m.type === 'error' && m.channel === 'secret:1');
  });

  it('a token connection passes the app authorize hook with source "token" and no session', async () => {
    const rt = realtimeCluster({ store: memoryStore() });
    cleanup.push(() => rt.close());
    const seen: unknown[] = [];
    const gw = await rt.gateway({
      tokens: { secret: TOKEN_SECRET },
      authorize: (who, channel) => {
        seen.push({ ...who, channel });
        return channel === 'room:1';
      },
    });
    const c = await connect(`${gw.url}?token=${await hsToken({ sub: 'bob' })}`);
    cleanup.push(async () => c.ws.terminate());
    c.send({ type: 'sub', channel: 'room:1' });
    await c.waitFor(subscribed('room:1'));
    expect(seen).toEqual([{ sessionId: null, userId: 'bob', attributes: {}, source: 'token', channel: 'room:1' }]);
  });

  it('an open connection closes with 4411 when its token expires, unless a refresh moved the expiry', async () => {
    const { gw } = await cluster();
    const stale = await connect(`${gw.url}?token=${await hsToken({ sub: 'carol' }, 2)}`);
    const fresh = await connect(`${gw.url}?token=${await hsToken({ sub: 'carol' }, 2)}`);
    cleanup.push(async () => {
      stale.ws.terminate();
      fresh.ws.terminate();
    });
    await fresh.waitFor((m) => m.type === 'hello');
    fresh.send({ type: 'refresh', token: await hsToken({ sub: 'carol' }, 60) });
    const refreshed = await fresh.waitFor((m) => m.type === 'refreshed');
    expect((refreshed as { expires: number }).expires).toBeGreaterThan(Date.now() / 1000 + 30);
    expect(await stale.closed).toEqual({ code: CloseCode.TokenExpired, reason: 'token expired' });
    expect(fresh.ws.readyState).toBe(WebSocket.OPEN);
    const metrics = await gw.gateway.metrics.render();
    expect(metrics).toContain('shoal_gateway_token_refusals_total{stage="open",reason="expired"} 1');
  });

  it('SSE takes the same ?token= and delivers to it', async () => {
    const { gw } = await cluster();
    const token = await hsToken({ sub: 'dave', channels: ['feed:1'] });
    const s = await openSse(`${gw.http}/sse?token=${token}&channels=feed:1`, {});
    cleanup.push(async () => s.close());
    await s.waitFor((e) => e.data.includes('"subscribed"') && e.data.includes('feed:1'));
    await createPublisher(gw.bus).to('feed:1').send('x', { ok: true });
    await s.waitFor((e) => e.data.includes('"msg"') && e.data.includes('"ok":true'));
  });

  it('the SDK calls getToken() before expiry and keeps the connection open on the same socket', async () => {
    const { gw } = await cluster();
    let calls = 0;
    const rt: ShoalClient = sdkConnect(gw.url, {
      WebSocket: WebSocket as never,
      getToken: async () => {
        calls++;
        return hsToken({ sub: 'erin', channels: ['news'] }, calls === 1 ? 3 : 60);
      },
    });
    cleanup.push(async () => rt.close());
    const got: unknown[] = [];
    rt.subscribe('news', (m) => got.push(m.data));
    await until(() => rt.state === 'open', 3000, 'open');
    const gateway = rt.hello?.gateway;
    await until(() => calls === 2, 5000, 'a second getToken() call before expiry');
    await new Promise((r) => setTimeout(r, 2500)); // past the first token's expiry
    expect(rt.state).toBe('open');
    expect(rt.hello?.gateway).toBe(gateway);
    await createPublisher(gw.bus).to('news').send('n', 1);
    await until(() => got.length === 1, 3000, 'delivery after the refresh');
  });

  it('the SDK given a token and no getToken ends with 4411 when the token expires', async () => {
    const { gw } = await cluster();
    const rt = sdkConnect(gw.url, { WebSocket: WebSocket as never, token: await hsToken({ sub: 'fay' }, 2) });
    cleanup.push(async () => rt.close());
    const states: unknown[] = [];
    rt.on('state', (state, d) => states.push([state, d.code]));
    await until(() => rt.state === 'ended', 5000, 'ended');
    expect(states.at(-1)).toEqual(['ended', CloseCode.TokenExpired]);
  });

  it.each(['RS256', 'ES256'] as const)('verifies %s tokens with keys from a JWKS URL', async (alg) => {
    const jwks = await jwksServer(alg);
    cleanup.push(() => jwks.close());
    const rt = realtimeCluster({ store: memoryStore() });
    cleanup.push(() => rt.close());
    const gw = await rt.gateway({ tokens: { jwksUrl: jwks.url, audience: 'rt', issuer: 'https://app' } });
    const token = await jwks.sign({ sub: 'gus', aud: 'rt', iss: 'https://app' });
    const c = await connect(`${gw.url}?token=${token}`, { origin: ORIGIN });
    cleanup.push(async () => c.ws.terminate());
    expect(await c.waitFor((m) => m.type === 'hello')).toMatchObject({ user: 'gus' });
    expect(jwks.requests()).toBe(1);
  });

  it('a subscription token grants one channel to the user it names', async () => {
    const { gw } = await cluster();
    const c = await connect(`${gw.url}?token=${await hsToken({ sub: 'hal' })}`);
    cleanup.push(async () => c.ws.terminate());
    c.send({ type: 'sub', channel: 'vip:1', token: await hsToken({ sub: 'hal', channel: 'vip:1' }) });
    await c.waitFor(subscribed('vip:1'));
  });
});

describe('subscription tokens on open subscriptions', () => {
  it('the channel is left with "token expired" when its token expires; a fresh token moves the expiry', async () => {
    const { gw } = await cluster();
    const c = await connect(`${gw.url}?token=${await hsToken({ sub: 'hal' }, 600)}`);
    cleanup.push(async () => c.ws.terminate());
    c.send({ type: 'sub', channel: 'vip:1', token: await hsToken({ sub: 'hal', channel: 'vip:1' }, 1) });
    c.send({ type: 'sub', channel: 'vip:2', token: await hsToken({ sub: 'hal', channel: 'vip:2' }, 1) });
    await c.waitFor(subscribed('vip:2'));
    // vip:2 gets a fresh token before the first one expires: it stays.
    c.send({ type: 'sub', channel: 'vip:2', token: await hsToken({ sub: 'hal', channel: 'vip:2' }, 60) });
    expect(await c.waitFor((m) => m.type === 'unsubscribed', 3000)).toEqual({
      type: 'unsubscribed',
      channel: 'vip:1',
      reason: 'token expired',
    });
    expect(await gw.gateway.metrics.render()).toContain(
      'shoal_gateway_token_refusals_total{stage="open",reason="expired"} 1',
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(c.messages.filter((m) => m.type === 'unsubscribed')).toHaveLength(1);
    const publisher = createPublisher(gw.bus);
    await publisher.to('vip:2').send('still', 1);
    await c.waitFor(isMsg('vip:2'));
  });
});

describe('subscription tokens in the SDK', () => {
  it('subscribe(channel, handler, { getToken }) joins with the token and renews it when it expires', async () => {
    const { gw } = await cluster();
    let calls = 0;
    const rt = sdkConnect(gw.url, { WebSocket: WebSocket as never, token: await hsToken({ sub: 'hal' }, 600) });
    cleanup.push(async () => rt.close());
    const got: unknown[] = [];
    const removed: string[] = [];
    rt.on('unsubscribed', (channel) => removed.push(channel));
    rt.subscribe('vip:1', (m) => got.push(m.data), {
      getToken: async () => {
        calls++;
        return hsToken({ sub: 'hal', channel: 'vip:1' }, calls === 1 ? 1 : 60);
      },
    });
    await until(() => rt.cursor('vip:1') !== undefined, 3000, 'joined with the first token');
    const publisher = createPublisher(gw.bus);
    await publisher.to('vip:1').send('n', 1);
    await until(() => calls >= 2, 4000, 'a second token after "token expired"');
    await publisher.to('vip:1').send('n', 2);
    await until(() => got.length === 2, 3000, 'both messages');
    expect(got).toEqual([1, 2]);
    expect(removed).toEqual([]);
  });
});
