import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/index.js';
import { createPublisher } from '../../src/realtime/publisher.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { memcachedStore } from '../../src/stores/memcached.js';
import { memoryStore } from '../../src/stores/memory.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { realtimeCluster, sleep, subscribed } from './fixture.js';
import { openSse } from './ws-client.js';

/**
 * The keep-alive rule, the same for WebSocket and SSE: an open connection keeps its session alive
 * (`keepSessionAlive: 'open'`, the default), or only client frames do ('inbound'). Whatever the
 * rule, a connection whose session is gone closes with 4001, also on a store that announces no
 * expiry (memcached). Sessions here idle out after 1.5 s; the server sends every 300 ms.
 */
const IDLE_MS = 1500;

/** Publishes to `channel` every 300 ms until stopped: a live dashboard's feed. */
function feed(publish: () => Promise<unknown>): () => void {
  let on = true;
  void (async () => {
    while (on) {
      await publish().catch(() => {});
      await sleep(300);
    }
  })();
  return () => {
    on = false;
  };
}

// Every test waits out idle timeouts on sessions and channels of its own: they run side by side.
describe('keepSessionAlive: open (default)', { concurrent: true }, () => {
  const cluster = realtimeCluster({ store: memoryStore(), session: { idleTimeout: IDLE_MS } });
  afterAll(() => cluster.close());

  it('a WebSocket that only receives keeps its session alive past the idle timeout', async () => {
    const gw = await cluster.gateway();
    const publisher = createPublisher(await cluster.bus());
    const { id, cookie } = await cluster.login('dash-ws');
    const c = await cluster.client(`${gw.url}?channels=room:feed-ws`, cookie);
    await c.waitFor(subscribed('room:feed-ws'));
    const stop = feed(() => publisher.to('room:feed-ws').send('tick', { t: Date.now() }));
    try {
      await sleep(IDLE_MS * 3);
    } finally {
      stop();
    }
    expect(c.ws.readyState, 'the socket is still open').toBe(c.ws.OPEN);
    expect(await cluster.web.load(id), 'the session is alive after 3 idle timeouts').not.toBeNull();
  });

  it('an SSE stream keeps its session alive past the idle timeout', async () => {
    const gw = await cluster.gateway();
    const publisher = createPublisher(await cluster.bus());
    const { id, cookie } = await cluster.login('dash-sse');
    const stream = await openSse(`${gw.http}/sse?channels=room:feed-sse`, { cookie });
    try {
      await stream.waitFor((e) => e.data.includes('"subscribed"'));
      const stop = feed(() => publisher.to('room:feed-sse').send('tick', { t: Date.now() }));
      try {
        await sleep(IDLE_MS * 3);
      } finally {
        stop();
      }
      expect(
        stream.events.some((e) => e.event === 'close'),
        'the stream was not closed',
      ).toBe(false);
      expect(await cluster.web.load(id), 'the session is alive after 3 idle timeouts').not.toBeNull();
    } finally {
      stream.close();
    }
  });

  it('a session removed behind the gateway’s back (no announcement) closes its busy socket with 4001', async () => {
    const gw = await cluster.gateway();
    const publisher = createPublisher(await cluster.bus());
    const { id, cookie } = await cluster.login('dash-gone');
    const c = await cluster.client(`${gw.url}?channels=room:feed-gone`, cookie);
    await c.waitFor(subscribed('room:feed-gone'));
    const stop = feed(() => publisher.to('room:feed-gone').send('tick', {}));
    try {
      // What an expiry on a store without a lifecycle index looks like to the gateway: nothing.
      await cluster.web.destroySession(id);
      const started = Date.now();
      const closed = await Promise.race([c.closed, sleep(IDLE_MS * 2).then(() => null)]);
      expect(closed?.code, 'closed with 4001').toBe(CloseCode.SessionEnded);
      expect(Date.now() - started).toBeLessThan(IDLE_MS);
    } finally {
      stop();
    }
  });
});

describe('keepSessionAlive: inbound', { concurrent: true }, () => {
  const cluster = realtimeCluster({ store: memoryStore(), session: { idleTimeout: IDLE_MS } });
  afterAll(() => cluster.close());

  it('a receive-only socket does not keep the session alive, and is closed with 4001 once it ends', async () => {
    const gw = await cluster.gateway({ keepSessionAlive: 'inbound' });
    const publisher = createPublisher(await cluster.bus());
    const { cookie } = await cluster.login('quiet');
    const c = await cluster.client(`${gw.url}?channels=room:feed-in`, cookie);
    await c.waitFor(subscribed('room:feed-in'));
    const started = Date.now();
    const stop = feed(() => publisher.to('room:feed-in').send('tick', {}));
    try {
      const closed = await Promise.race([c.closed, sleep(IDLE_MS * 4).then(() => null)]);
      expect(closed?.code, 'closed with 4001').toBe(CloseCode.SessionEnded);
      const at = Date.now() - started;
      expect(at).toBeGreaterThanOrEqual(IDLE_MS - 100);
      expect(at).toBeLessThan(IDLE_MS * 2.5);
    } finally {
      stop();
    }
  });

  it('frames from the client keep it alive', async () => {
    const gw = await cluster.gateway({ keepSessionAlive: 'inbound' });
    const { id, cookie } = await cluster.login('chatty');
    const c = await cluster.client(gw.url, cookie);
    await c.waitFor((m) => m.type === 'hello');
    for (let i = 0; i < 15; i++) {
      c.send({ type: 'ping', id: i });
      await sleep(300);
    }
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    expect(await cluster.web.load(id)).not.toBeNull();
  });

  it('refuses an unknown rule with a clear error', async () => {
    await expect(cluster.gateway({ keepSessionAlive: 'always' as never })).rejects.toThrow(
      /keepSessionAlive must be 'open', 'inbound' or false/,
    );
  });
});

describe('memcached (no lifecycle index, no expiry announcement)', { concurrent: true }, () => {
  let skip: string | undefined;
  let store: SessionStore | undefined;
  let cluster: ReturnType<typeof realtimeCluster> | undefined;
  beforeAll(async () => {
    skip = await engineSkipReason('memcached');
    if (skip) return;
    store = await memcachedStore({ url: ENGINE_URLS.memcached, namespace: `ka-${randomUUID().slice(0, 8)}` });
    cluster = realtimeCluster({ store, session: { idleTimeout: IDLE_MS } });
  });
  afterAll(async () => {
    await cluster?.close();
    await store?.close();
  });

  it('an expired session’s busy socket closes with 4001 and receives nothing more', async (ctx) => {
    if (skip || !cluster) return ctx.skip();
    const gw = await cluster.gateway({ keepSessionAlive: 'inbound' });
    const publisher = createPublisher(await cluster.bus());
    const { cookie } = await cluster.login('mc-user');
    const c = await cluster.client(gw.url, cookie);
    await c.waitFor(subscribed('user:mc-user'));
    const stop = feed(() => publisher.to({ user: 'mc-user' }).send('tick', {}));
    try {
      const closed = await Promise.race([c.closed, sleep(IDLE_MS * 4).then(() => null)]);
      expect(closed?.code, 'closed with 4001').toBe(CloseCode.SessionEnded);
    } finally {
      stop();
    }
  });
});
