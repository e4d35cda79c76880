import { describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/index.js';
import { memoryStore } from '../../src/stores/memory.js';
import { ORIGIN, realtimeCluster } from './fixture.js';
import { appServer, cleanupAfterEach, json } from './proxy-helpers.js';
import { connect, handshakeStatus } from './ws-client.js';

const cleanup = cleanupAfterEach();

/**
 * The app answers per cookie: `good` is a user, the others misbehave. A healthy client
 * connected first must be untouched by every failure.
 */
async function setup() {
  const app = await appServer((req, res) => {
    const kind = /kind=(\w+)/.exec(req.headers.cookie ?? '')?.[1];
    if (kind === 'good') return json(res, { user: 'ok' });
    if (kind === 'slow') return setTimeout(() => json(res, { user: 'late' }), 2000);
    if (kind === 'junk') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end('{"user": ');
    }
    if (kind === 'array') return json(res, ['x']);
    if (kind === 'badchannels') return json(res, { user: 'u', channels: ['bad channel'] });
    if (kind === 'status') {
      res.writeHead(500);
      return res.end('oops');
    }
    if (kind === 'nocode') return json(res, { error: { code: 1000, reason: 'no' } });
  });
  cleanup.push(() => app.close());
  const rt = realtimeCluster({ store: memoryStore() });
  cleanup.push(() => rt.close());
  const gw = await rt.gateway({ connectProxy: { url: app.url, timeoutMs: 300 } });
  const healthy = await connect(gw.url, { cookie: 'kind=good', origin: ORIGIN });
  cleanup.push(async () => healthy.ws.terminate());
  await healthy.waitFor((m) => m.type === 'hello');
  return { gw, healthy };
}

describe('connect proxy failures', () => {
  it.each([
    ['slow (past timeoutMs)', 'slow', 'timeout'],
    ['malformed JSON', 'junk', 'malformed'],
    ['not an object', 'array', 'malformed'],
    ['invalid channels', 'badchannels', 'malformed'],
    ['an error status', 'status', 'status'],
  ])('%s → 4013, counted, the others keep being served', async (_name, kind, reason) => {
    const { gw, healthy } = await setup();
    const started = Date.now();
    expect(await handshakeStatus(gw.url, { cookie: `kind=${kind}`, origin: ORIGIN })).toBe(CloseCode.AuthUnavailable);
    expect(Date.now() - started).toBeLessThan(1500);
    const metrics = await gw.gateway.metrics.render();
    expect(metrics).toContain(`shoal_gateway_connect_proxy_failures_total{reason="${reason}"} 1`);
    healthy.send({ type: 'ping', id: 7 });
    await healthy.waitFor((m) => m.type === 'pong');
  });

  it('an app that is down → 4013 (unreachable)', async () => {
    const app = await appServer(() => {});
    const url = app.url;
    await app.close();
    const rt = realtimeCluster({ store: memoryStore() });
    cleanup.push(() => rt.close());
    const gw = await rt.gateway({ connectProxy: { url, timeoutMs: 500 } });
    expect(await handshakeStatus(gw.url, { origin: ORIGIN })).toBe(CloseCode.AuthUnavailable);
    expect(await gw.gateway.metrics.render()).toContain(
      'shoal_gateway_connect_proxy_failures_total{reason="unreachable"} 1',
    );
  });

  it('a refusal with a code outside 4500–4999 closes with 4401', async () => {
    const { gw } = await setup();
    expect(await handshakeStatus(gw.url, { cookie: 'kind=nocode', origin: ORIGIN })).toBe(CloseCode.Unauthorized);
  });
});
