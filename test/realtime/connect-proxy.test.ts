import { describe, expect, it } from 'vitest';
import { createPublisher } from '../../src/realtime/publisher.js';
import { memoryStore } from '../../src/stores/memory.js';
import { isMsg, ORIGIN, realtimeCluster, subscribed } from './fixture.js';
import { appServer, cleanupAfterEach, json } from './proxy-helpers.js';
import { connect, openSse } from './ws-client.js';

const cleanup = cleanupAfterEach();

/** The app's own session cookie (say JSESSIONID) decides who connects, as a CFML or Java app would. */
async function setup() {
  const app = await appServer((req, res) => {
    const sid = /JSESSIONID=(\w+)/.exec(req.headers.cookie ?? '')?.[1];
    if (sid === 'alice1') json(res, { user: 'alice', channels: ['team:1'], info: { name: 'Alice' } });
    else json(res, { error: { code: 4501, reason: 'sign in on the app first' } });
  });
  cleanup.push(() => app.close());
  const rt = realtimeCluster({ store: memoryStore() });
  cleanup.push(() => rt.close());
  const gw = await rt.gateway({ connectProxy: { url: app.url, headers: ['x-forwarded-for'], timeoutMs: 1000 } });
  return { app, gw };
}

describe('connect proxy', () => {
  it("the app's answer decides who connects: user channel, granted channels, delivery", async () => {
    const { app, gw } = await setup();
    const c = await connect(gw.url, { cookie: 'JSESSIONID=alice1', origin: ORIGIN });
    cleanup.push(async () => c.ws.terminate());
    expect(await c.waitFor((m) => m.type === 'hello')).toMatchObject({ user: 'alice', session: null });
    c.send({ type: 'sub', channel: 'team:1' });
    await c.waitFor(subscribed('team:1'));
    await createPublisher(gw.bus).to({ user: 'alice' }).send('hi', 1);
    await c.waitFor(isMsg('user:alice'));
    expect(app.seen).toHaveLength(1); // asked once per connection, not per frame
    expect(app.seen[0]?.headers.cookie).toBe('JSESSIONID=alice1');
    expect(JSON.parse(app.seen[0]?.body ?? '')).toEqual({ transport: 'ws' });
  });

  it('tells the app which transport asks: an SSE stream and an SSE request say sse', async () => {
    const { app, gw } = await setup();
    const stream = await openSse(`${gw.http}/sse`, { cookie: 'JSESSIONID=alice1', origin: ORIGIN });
    cleanup.push(async () => stream.close());
    await stream.waitFor((e) => e.data.includes('"hello"'));
    const res = await fetch(`${gw.http}/sse`, {
      method: 'POST',
      headers: { cookie: 'JSESSIONID=alice1', origin: ORIGIN, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'history', id: 1, channel: 'user:alice' }),
    });
    expect(res.status).toBe(200);
    expect(app.seen.map((r) => JSON.parse(r.body))).toEqual([{ transport: 'sse' }, { transport: 'sse' }]);
  });

  it('forwards only the Cookie header and the allowlisted headers', async () => {
    const { app, gw } = await setup();
    const c = await connect(gw.url, { cookie: 'JSESSIONID=alice1', origin: ORIGIN });
    cleanup.push(async () => c.ws.terminate());
    await c.waitFor((m) => m.type === 'hello');
    const headers = app.seen[0]?.headers ?? {};
    expect(headers.origin).toBeUndefined();
    expect(headers['sec-websocket-key']).toBeUndefined();
  });

  it("the app's refusal closes with the app's code (4500–4999), over WebSocket and SSE", async () => {
    const { gw } = await setup();
    const c = await connect(gw.url, { cookie: 'JSESSIONID=nobody', origin: ORIGIN });
    expect(await c.closed).toEqual({ code: 4501, reason: 'sign in on the app first' });
    const s = await openSse(`${gw.http}/sse`, { cookie: 'JSESSIONID=nobody', origin: ORIGIN });
    cleanup.push(async () => s.close());
    const close = await s.waitFor((e) => e.event === 'close');
    expect(close.data).toContain('4501');
    const ok = await openSse(`${gw.http}/sse?channels=team:1`, { cookie: 'JSESSIONID=alice1', origin: ORIGIN });
    cleanup.push(async () => ok.close());
    await ok.waitFor((e) => e.data.includes('"subscribed"') && e.data.includes('team:1'));
  });
});
