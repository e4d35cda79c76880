import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { redisBus } from '../../src/bus/redis.js';
import type { ServerMessage } from '../../src/protocol/index.js';
import { memoryStore } from '../../src/stores/memory.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { isMsg, realtimeCluster, subscribed } from './fixture.js';
import { cleanupAfterEach } from './proxy-helpers.js';
import type { TestClient } from './ws-client.js';

/**
 * Publish from the client (`pub`) and history for clients (`history`) on a real Redis bus: what
 * the app's canPublish allows reaches subscribers on another gateway, everything else is refused
 * and counted; history is only for channels the connection may read, bounded by maxHistory.
 */
const skip = await engineSkipReason('redis');
const cleanup = cleanupAfterEach();
type Reply = Extract<ServerMessage, { type: 'reply' }>;

async function setup() {
  const ns = `pub-${randomUUID().slice(0, 8)}`;
  const rt = realtimeCluster({
    store: memoryStore(),
    openBus: () => redisBus({ url: ENGINE_URLS.redis, namespace: ns }),
  });
  cleanup.push(() => rt.close());
  const options = {
    canPublish: (ctx: { user: string | null }, channel: string, event: string) =>
      channel.startsWith('room:') && (event === 'typing' || ctx.user === 'mod'),
    requestLimits: { maxHistory: 3 },
  };
  const gw1 = await rt.gateway(options);
  const gw2 = await rt.gateway(options);
  const client = async (url: string, user: string) => {
    const c = await rt.client(url, (await rt.login(user)).cookie);
    await c.waitFor((m) => m.type === 'hello');
    return c;
  };
  const metric = async (text: string) => (await gw1.gateway.metrics.render()).includes(text);
  return { gw1, gw2, client, metric };
}

async function ask(c: TestClient, frame: Record<string, unknown> & { id: number }): Promise<Reply> {
  c.send(frame);
  return (await c.waitFor((m) => m.type === 'reply' && m.id === frame.id)) as Reply;
}

describe.skipIf(skip)('publish from the client', () => {
  it("what canPublish allows reaches another gateway's subscribers; the rest is forbidden and counted", async () => {
    const { gw1, gw2, client, metric } = await setup();
    const alice = await client(gw1.url, 'alice');
    const bob = await client(gw2.url, 'bob');
    bob.send({ type: 'sub', channel: 'room:1' });
    await bob.waitFor(subscribed('room:1'));
    const ok = await ask(alice, { type: 'pub', id: 1, channel: 'room:1', event: 'typing', data: { on: true } });
    expect(ok).toMatchObject({ result: { epoch: expect.any(String), offset: 1 } });
    expect(await bob.waitFor(isMsg('room:1'))).toMatchObject({ event: 'typing', data: { on: true }, offset: 1 });
    const refused = [
      await ask(alice, { type: 'pub', id: 2, channel: 'room:1', event: 'chat', data: 'x' }),
      await ask(alice, { type: 'pub', id: 3, channel: 'lobby', event: 'typing', data: 'x' }),
      await ask(alice, { type: 'pub', id: 4, channel: '_shoal:control', event: 'typing', data: 'x' }),
      await ask(alice, { type: 'pub', id: 5, channel: 'room:1', event: 'shoal:session-ended', data: 'x' }),
    ];
    for (const r of refused) expect(r).toMatchObject({ error: { code: 'forbidden' } });
    expect(await metric('shoal_gateway_request_errors_total{type="pub",code="forbidden"} 4')).toBe(true);
    // Nothing refused was published: bob got exactly the one message.
    await ask(alice, { type: 'pub', id: 6, channel: 'room:1', event: 'typing', data: 'last' });
    await bob.waitFor((m) => m.type === 'msg' && m.offset === 2);
    expect(bob.messages.filter((m) => m.type === 'msg').map((m) => (m as { event: string }).event)).toEqual([
      'typing',
      'typing',
    ]);
  });

  it('a gateway without canPublish refuses every publish', async () => {
    const ns = `pub-${randomUUID().slice(0, 8)}`;
    const rt = realtimeCluster({
      store: memoryStore(),
      openBus: () => redisBus({ url: ENGINE_URLS.redis, namespace: ns }),
    });
    cleanup.push(() => rt.close());
    const gw = await rt.gateway();
    const c = await rt.client(gw.url, (await rt.login('alice')).cookie);
    expect(await ask(c, { type: 'pub', id: 1, channel: 'room:1', event: 'typing', data: 1 })).toMatchObject({
      error: { code: 'forbidden' },
    });
  });
});

describe.skipIf(skip)('history for clients', () => {
  it('the last N (capped by maxHistory), since an offset, and refused for a channel it may not read', async () => {
    const { gw1, client, metric } = await setup();
    const mod = await client(gw1.url, 'mod');
    for (let n = 1; n <= 6; n++) await ask(mod, { type: 'pub', id: n, channel: 'room:h', event: 'said', data: { n } });
    const alice = await client(gw1.url, 'alice');
    const last2 = await ask(alice, { type: 'history', id: 1, channel: 'room:h', limit: 2 });
    expect(last2).toMatchObject({ result: { offset: 6, complete: true } });
    const r = (last2 as { result: { epoch: string; messages: { offset: number; event: string; data: unknown }[] } })
      .result;
    expect(r.messages).toEqual([
      { epoch: r.epoch, offset: 5, event: 'said', data: { n: 5 } },
      { epoch: r.epoch, offset: 6, event: 'said', data: { n: 6 } },
    ]);
    const capped = await ask(alice, { type: 'history', id: 2, channel: 'room:h', limit: 50 });
    expect((capped as { result: { messages: { offset: number }[] } }).result.messages.map((m) => m.offset)).toEqual([
      4, 5, 6,
    ]);
    const since = await ask(alice, { type: 'history', id: 3, channel: 'room:h', since: { epoch: r.epoch, offset: 4 } });
    expect((since as { result: { messages: { offset: number }[] } }).result.messages.map((m) => m.offset)).toEqual([
      5, 6,
    ]);
    const otherEpoch = await ask(alice, {
      type: 'history',
      id: 4,
      channel: 'room:h',
      since: { epoch: 'x', offset: 4 },
    });
    expect(otherEpoch).toMatchObject({ result: { messages: [], complete: false, offset: 6 } });
    expect(await ask(alice, { type: 'history', id: 5, channel: 'secret:1' })).toMatchObject({
      error: { code: 'forbidden' },
    });
    expect(await ask(alice, { type: 'history', id: 6, channel: 'user:bob' })).toMatchObject({
      error: { code: 'forbidden' },
    });
    expect(await metric('shoal_gateway_request_errors_total{type="history",code="forbidden"} 2')).toBe(true);
  });
});
