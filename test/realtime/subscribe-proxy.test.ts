import { describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/stores/memory.js';
import { ORIGIN, realtimeCluster, subscribed } from './fixture.js';
import { appServer, cleanupAfterEach, json } from './proxy-helpers.js';
import { connect } from './ws-client.js';

const cleanup = cleanupAfterEach();

/**
 * The app decides joins over HTTP: `room:*` for alice only; `slow:`, `junk:`, `oops:` misbehave.
 * Every bad answer must deny (never open a channel), be counted, and leave the socket serving.
 */
async function setup() {
  const app = await appServer((_req, res, body) => {
    const { channel, user } = JSON.parse(body) as { channel: string; user: string };
    if (channel.startsWith('slow:')) return setTimeout(() => json(res, { allow: true }), 2000);
    if (channel.startsWith('junk:')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end('{"allow":');
    }
    if (channel.startsWith('odd:')) return json(res, { allow: 'yes' });
    if (channel.startsWith('oops:')) {
      res.writeHead(503);
      return res.end();
    }
    json(res, { allow: channel.startsWith('room:') && user === 'alice' });
  });
  cleanup.push(() => app.close());
  const rt = realtimeCluster({ store: memoryStore() });
  cleanup.push(() => rt.close());
  const gw = await rt.gateway({ authorize: undefined, subscribeProxy: { url: app.url, timeoutMs: 300 } });
  const client = async (user: string) => {
    const c = await rt.client(gw.url, (await rt.login(user)).cookie);
    await c.waitFor((m) => m.type === 'hello');
    return c;
  };
  return { app, gw, client };
}

describe('subscribe proxy', () => {
  it("the app's allow / deny decides joins, and it is told the channel, user and how they connected", async () => {
    const { app, client } = await setup();
    const alice = await client('alice');
    const bob = await client('bob');
    alice.send({ type: 'sub', channel: 'room:1' });
    await alice.waitFor(subscribed('room:1'));
    bob.send({ type: 'sub', channel: 'room:1' });
    expect(await bob.waitFor((m) => m.type === 'error' && m.channel === 'room:1')).toMatchObject({ code: 'forbidden' });
    expect(app.seen.map((r) => JSON.parse(r.body))).toEqual([
      { channel: 'room:1', user: 'alice', source: 'cookie' },
      { channel: 'room:1', user: 'bob', source: 'cookie' },
    ]);
  });

  it.each([
    ['slow', 'slow:1', 'timeout'],
    ['malformed JSON', 'junk:1', 'malformed'],
    ['no boolean allow', 'odd:1', 'malformed'],
    ['an error status', 'oops:1', 'status'],
  ])('%s → denied, counted, the socket keeps serving', async (_name, channel, reason) => {
    const { gw, client } = await setup();
    const alice = await client('alice');
    alice.send({ type: 'sub', channel });
    expect(await alice.waitFor((m) => m.type === 'error' && m.channel === channel)).toMatchObject({
      code: 'forbidden',
    });
    expect(await gw.gateway.metrics.render()).toContain(
      `shoal_gateway_subscribe_proxy_failures_total{reason="${reason}"} 1`,
    );
    alice.send({ type: 'sub', channel: 'room:2' });
    await alice.waitFor(subscribed('room:2'));
  });

  it('an app that is down → denied (unreachable)', async () => {
    const app = await appServer(() => {});
    await app.close();
    const rt = realtimeCluster({ store: memoryStore() });
    cleanup.push(() => rt.close());
    const gw = await rt.gateway({ authorize: undefined, subscribeProxy: { url: app.url, timeoutMs: 300 } });
    const c = await connect(`${gw.url}?channels=room:1`, { cookie: (await rt.login('alice')).cookie, origin: ORIGIN });
    cleanup.push(async () => c.ws.terminate());
    await c.waitFor((m) => m.type === 'error' && m.channel === 'room:1');
    expect(await gw.gateway.metrics.render()).toContain(
      'shoal_gateway_subscribe_proxy_failures_total{reason="unreachable"} 1',
    );
  });
});
