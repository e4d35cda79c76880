import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { Bus, BusMessage } from '../../src/bus/contract.js';
import { redisBus } from '../../src/bus/redis.js';
import type { ServerMessage } from '../../src/protocol/index.js';
import { PRESENCE_SHARDS, shardChannel } from '../../src/realtime/presence-wire.js';
import { createPublisher } from '../../src/realtime/publisher.js';
import { memoryStore } from '../../src/stores/memory.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { realtimeCluster, sleep, subscribed, until } from './fixture.js';
import type { TestClient } from './ws-client.js';

/**
 * Presence across gateways on a real Redis bus: lists with who joined and left, a gateway that
 * starts late learns the others' users, a web node can ask, a gateway that dies without a word
 * is dropped after its TTL, and the traffic follows changes, not channels × gateways.
 */
const skip = await engineSkipReason('redis');
const HEARTBEAT_MS = 300;
const TTL_MS = 1000;

function lists(c: TestClient, channel: string) {
  return c.messages.filter(
    (m): m is Extract<ServerMessage, { type: 'presence' }> => m.type === 'presence' && m.channel === channel,
  );
}
const lastUsers = (c: TestClient, channel: string) => lists(c, channel).at(-1)?.users;

describe.skipIf(skip)('presence across gateways', () => {
  const ns = `pres-${randomUUID().slice(0, 8)}`;
  const cluster = realtimeCluster({
    store: memoryStore(),
    openBus: () => redisBus({ url: ENGINE_URLS.redis, namespace: ns }),
  });
  const presence = { heartbeatMs: HEARTBEAT_MS, ttlMs: TTL_MS };
  afterAll(() => cluster.close());

  async function member(gwUrl: string, user: string, channels: string[]) {
    const { cookie } = await cluster.login(user);
    const c = await cluster.client(`${gwUrl}?channels=${channels.join(',')}`, cookie);
    await Promise.all(channels.map((ch) => c.waitFor(subscribed(ch))));
    return c;
  }

  it('sends who joined and who left with each list, across two gateways', async () => {
    const [a, b] = [await cluster.gateway({ presence }), await cluster.gateway({ presence })];
    const room = `room:diff-${randomUUID().slice(0, 8)}`;
    const watcher = await member(b.url, 'wes', [room]);
    watcher.send({ type: 'presence', channel: room });
    await until(() => lastUsers(watcher, room)?.join() === 'wes', 3000, 'first list');
    const ann = await member(a.url, 'ann', [room]);
    await until(() => lastUsers(watcher, room)?.join() === 'ann,wes', 3000, 'ann listed on the other gateway');
    expect(lists(watcher, room).at(-1)).toMatchObject({ joined: ['ann'], left: [] });
    ann.close();
    await until(() => lastUsers(watcher, room)?.join() === 'wes', 3000, 'ann gone');
    expect(lists(watcher, room).at(-1)).toMatchObject({ joined: [], left: ['ann'] });
  });

  it('a gateway started after users joined elsewhere lists them, and a web node can ask', async () => {
    const first = await cluster.gateway({ presence });
    const room = `room:late-${randomUUID().slice(0, 8)}`;
    await member(first.url, 'early', [room]);
    const late = await cluster.gateway({ presence });
    const watcher = await member(late.url, 'late', [room]);
    watcher.send({ type: 'presence', channel: room });
    await until(() => lastUsers(watcher, room)?.join() === 'early,late', 3000, 'the late gateway knows early');

    const publisher = createPublisher(await cluster.bus());
    const answer = await publisher.presence(room, { timeoutMs: 2000 });
    expect(answer.users).toEqual(['early', 'late']);
    expect(answer.complete).toBe(true);
    expect(answer.gateways).toBeGreaterThanOrEqual(2);
    await expect(publisher.presence('_shoal:presence')).rejects.toThrow(/not an app channel/);
  });

  it("drops a gateway's users after its TTL when it dies without a word", async () => {
    const [keep, doomed] = [await cluster.gateway({ presence }), await cluster.gateway({ presence })];
    const room = `room:crash-${randomUUID().slice(0, 8)}`;
    const watcher = await member(keep.url, 'stays', [room]);
    await member(doomed.url, 'ghost', [room]);
    watcher.send({ type: 'presence', channel: room });
    await until(() => lastUsers(watcher, room)?.join() === 'ghost,stays', 3000, 'ghost listed');
    // Its bus goes first: no bye, no more heartbeats, as when the process is killed.
    await doomed.bus.close();
    const cut = Date.now();
    await until(() => lastUsers(watcher, room)?.join() === 'stays', TTL_MS + 3 * HEARTBEAT_MS + 2000, 'ghost dropped');
    expect(Date.now() - cut).toBeGreaterThanOrEqual(TTL_MS - HEARTBEAT_MS);
  });

  it('costs heartbeats when nothing changes, whatever the number of channels', async () => {
    const gateways = [await cluster.gateway({ presence }), await cluster.gateway({ presence })];
    const rooms = Array.from({ length: 200 }, (_, i) => `room:many-${i}-${randomUUID().slice(0, 4)}`);
    for (const [i, gw] of gateways.entries()) {
      for (let k = 0; k < 4; k++) await member(gw.url, `u${i}-${k}`, rooms.slice(k * 50, k * 50 + 50));
    }
    const observer: Bus = await cluster.bus();
    const seen: BusMessage[] = [];
    observer.onMessage((m) => seen.push(m));
    await observer.subscribe('_shoal:presence');
    for (let shard = 0; shard < PRESENCE_SHARDS; shard++) await observer.subscribe(shardChannel(shard));
    await sleep(500); // the joins' announcements settle
    seen.length = 0;
    const windowMs = 3000;
    await sleep(windowMs);
    const deltas = seen.filter((m) => m.event === 'delta' || m.event === 'snapshot');
    const alive = seen.filter((m) => m.event === 'alive');
    expect(deltas, 'no change, no announcement').toEqual([]);
    // Every gateway of this file's cluster still running heartbeats; none announces its 200 channels.
    expect(alive.length).toBeLessThanOrEqual(10 * Math.ceil(windowMs / HEARTBEAT_MS));
    expect(Math.max(...alive.map((m) => m.data.length))).toBeLessThan(300);
  });
});
