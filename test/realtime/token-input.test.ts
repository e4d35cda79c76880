import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/index.js';
import { memoryStore } from '../../src/stores/memory.js';
import { realtimeCluster, subscribed } from './fixture.js';
import { cleanupAfterEach } from './proxy-helpers.js';
import { hsToken, jwksServer, noneToken, TOKEN_SECRET } from './token-helpers.js';
import { connect, handshakeStatus } from './ws-client.js';

const cleanup = cleanupAfterEach();

async function gateway(tokens: Record<string, unknown> = { secret: TOKEN_SECRET, audience: 'rt', issuer: 'app' }) {
  const rt = realtimeCluster({ store: memoryStore() });
  cleanup.push(() => rt.close());
  return rt.gateway({ tokens });
}

const good = { sub: 'alice', aud: 'rt', iss: 'app' };

describe('refused connection tokens', () => {
  it.each([
    ['expired', () => hsToken(good, -5), CloseCode.TokenExpired, 'expired'],
    ['unsigned (alg: none)', async () => noneToken(good), CloseCode.TokenInvalid, 'algorithm'],
    ['signed with another secret', () => hsToken(good, 60, 'another-secret-0123456789abcdefghijkl'), 4410, 'signature'],
    ['for another audience', () => hsToken({ ...good, aud: 'other' }), CloseCode.TokenInvalid, 'audience'],
    ['from another issuer', () => hsToken({ ...good, iss: 'evil' }), CloseCode.TokenInvalid, 'issuer'],
    ['without sub', () => hsToken({ aud: 'rt', iss: 'app' }), CloseCode.TokenInvalid, 'claims'],
    ['not a JWT', async () => 'a.b.c', CloseCode.TokenInvalid, 'malformed'],
  ])('%s → closed with its code, counted, and the gateway keeps serving', async (_name, make, code, reason) => {
    const gw = await gateway();
    const ok = await connect(`${gw.url}?token=${await hsToken(good)}`);
    cleanup.push(async () => ok.ws.terminate());
    await ok.waitFor((m) => m.type === 'hello');
    expect(await handshakeStatus(`${gw.url}?token=${await make()}`)).toBe(code);
    const metrics = await gw.gateway.metrics.render();
    expect(metrics).toContain(`shoal_gateway_token_refusals_total{stage="connect",reason="${reason}"} 1`);
    expect(metrics).toContain(`status="${code}",reason="token-${reason}"} 1`);
    ok.send({ type: 'ping', id: 1 });
    await ok.waitFor((m) => m.type === 'pong');
  });

  it('a gateway without token keys refuses every token with 4410', async () => {
    const rt = realtimeCluster({ store: memoryStore() });
    cleanup.push(() => rt.close());
    const gw = await rt.gateway();
    expect(await handshakeStatus(`${gw.url}?token=${await hsToken(good)}`)).toBe(CloseCode.TokenInvalid);
  });

  it('an HS256 token is not accepted by a JWKS-only gateway (no algorithm confusion)', async () => {
    const jwks = await jwksServer('RS256');
    cleanup.push(() => jwks.close());
    const gw = await gateway({ jwksUrl: jwks.url });
    expect(await handshakeStatus(`${gw.url}?token=${await hsToken(good)}`)).toBe(CloseCode.TokenInvalid);
  });

  it('a JWKS URL that is down, or answers junk, closes with 4013 (retry later)', async () => {
    const junk = createServer((_req, res) => res.end('not json'));
    await new Promise<void>((r) => junk.listen(0, '127.0.0.1', () => r()));
    cleanup.push(() => new Promise((r) => junk.close(() => r())));
    const junkUrl = `http://127.0.0.1:${(junk.address() as AddressInfo).port}/jwks`;
    const jwks = await jwksServer('ES256');
    const token = await jwks.sign({ sub: 'x' });
    await jwks.close(); // its port is now closed: the gateway cannot fetch keys
    for (const url of [jwks.url, junkUrl]) {
      const gw = await gateway({ jwksUrl: url, jwksTimeoutMs: 500 });
      expect(await handshakeStatus(`${gw.url}?token=${token}`)).toBe(CloseCode.AuthUnavailable);
      expect(await gw.gateway.metrics.render()).toContain(
        'shoal_gateway_token_refusals_total{stage="connect",reason="unavailable"} 1',
      );
    }
  });

  it('a refresh with a token for another user closes with 4410; a cookie connection cannot refresh', async () => {
    const rt = realtimeCluster({ store: memoryStore() });
    cleanup.push(() => rt.close());
    const gw = await rt.gateway({ tokens: { secret: TOKEN_SECRET } });
    const c = await connect(`${gw.url}?token=${await hsToken({ sub: 'alice' })}`);
    cleanup.push(async () => c.ws.terminate());
    await c.waitFor((m) => m.type === 'hello');
    c.send({ type: 'refresh', token: await hsToken({ sub: 'mallory' }) });
    expect((await c.closed).code).toBe(CloseCode.TokenInvalid);
    const { cookie } = await rt.login('bob');
    const withCookie = await rt.client(gw.url, cookie);
    await withCookie.waitFor((m) => m.type === 'hello');
    withCookie.send({ type: 'refresh', token: await hsToken({ sub: 'bob' }) });
    await withCookie.waitFor((m) => m.type === 'error' && m.code === 'protocol');
  });

  it('a subscription token for another channel, another user, or expired is refused with an error; the socket stays', async () => {
    const gw = await gateway({ secret: TOKEN_SECRET });
    const c = await connect(`${gw.url}?token=${await hsToken({ sub: 'alice' })}`);
    cleanup.push(async () => c.ws.terminate());
    const tries = [
      ['vip:1', await hsToken({ sub: 'alice', channel: 'vip:2' }), 'token-invalid'],
      ['vip:3', await hsToken({ sub: 'bob', channel: 'vip:3' }), 'token-invalid'],
      ['vip:4', await hsToken({ sub: 'alice', channel: 'vip:4' }, -5), 'token-expired'],
      ['user:bob', await hsToken({ sub: 'alice', channel: 'user:bob' }), 'forbidden'],
    ] as const;
    for (const [channel, token, code] of tries) {
      c.send({ type: 'sub', channel, token });
      expect(await c.waitFor((m) => m.type === 'error' && m.channel === channel)).toMatchObject({ code });
    }
    c.send({ type: 'sub', channel: 'vip:5', token: await hsToken({ sub: 'alice', channel: 'vip:5' }) });
    await c.waitFor(subscribed('vip:5'));
  });
});
