import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRealtime, type EndedSnapshot, type EndInfo, type SessionStore } from 'shoal';
import { redisBus } from 'shoal/bus/redis';
import { memcachedStore } from 'shoal/stores/memcached';
import { memoryStore } from 'shoal/stores/memory';
import { postgresStore } from 'shoal/stores/postgres';
import { redisStore } from 'shoal/stores/redis';
import { sqliteStore } from 'shoal/stores/sqlite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { ORIGIN, type RunningGateway, realtimeCluster, until } from './fixture.js';
import { openSse, type SseStream, type TestClient } from './ws-client.js';

/**
 * "Remember me" with only a socket keeping the session busy: a session given a long lifetime of its
 * own (`session.setLifetime`) outlives many of the manager's idle periods while a gateway WebSocket
 * or SSE stream is all that touches it, while an ordinary session of the same manager ends and its
 * sockets close with 4001.
 *
 * The touch interval is longer than the manager's idle timeout: between two touches of the gateway
 * only a session's own idle length can bridge the gap, so a touch that slid the session by the
 * manager's idle timeout (the deadline the gateway passes) would end the remembered session too.
 */
const IDLE_MS = 1000;
const TOUCH_MS = 1600;
const OWN_IDLE_MS = 5000;
/** Several of the manager's idle periods, and more than one of the session's own. */
const KEPT_FOR_MS = 7000;

const redisSkip = await engineSkipReason('redis');
const ns = () => `remember-${randomUUID().slice(0, 8)}`;
const stores: [string, () => SessionStore | Promise<SessionStore>, string | undefined][] = [
  ['memory', () => memoryStore(), undefined],
  ['sqlite', () => sqliteStore({ path: ':memory:' }), undefined],
  ['redis', () => redisStore({ url: ENGINE_URLS.redis, namespace: ns() }), redisSkip],
  [
    'postgres',
    () => postgresStore({ url: ENGINE_URLS.postgres, namespace: ns() }),
    redisSkip ?? (await engineSkipReason('postgres')),
  ],
  // memcached cannot list what expired: no onSessionEnd, but the gateway's touch still finds the session gone.
  [
    'memcached',
    () => memcachedStore({ url: ENGINE_URLS.memcached, namespace: ns() }),
    redisSkip ?? (await engineSkipReason('memcached')),
  ],
];

// The stores run side by side: each test mostly waits out idle periods.
describe.concurrent.each(stores)(
  'a remembered session kept busy only by a gateway socket (%s store)',
  (_name, open, skip) => {
    const ended: { id: string; reason: string }[] = [];
    let cluster: ReturnType<typeof realtimeCluster>;
    let gw: RunningGateway;
    let store: SessionStore;
    let stopRealtime: () => Promise<void> = async () => {};

    beforeAll(async () => {
      if (skip) return;
      const busNamespace = ns();
      store = await open();
      cluster = realtimeCluster({
        store,
        openBus: () => redisBus({ url: ENGINE_URLS.redis, namespace: busNamespace }),
        session: {
          idleTimeout: IDLE_MS,
          touchInterval: TOUCH_MS,
          sweep: { enabled: true, interval: 100 },
          ...(store.capabilities.lifecycle
            ? {
                onSessionEnd: (s: EndedSnapshot, info: EndInfo) => {
                  ended.push({ id: s.id, reason: info.reason });
                },
              }
            : {}),
        },
      });
      // The web node's link: a session that ends closes its sockets on every gateway.
      const realtime = createRealtime({ bus: await cluster.bus(), sessions: cluster.web });
      stopRealtime = () => realtime.close();
      gw = await cluster.gateway({ keepSessionAlive: 'open' });
    });
    afterAll(async () => {
      await stopRealtime();
      await cluster?.close();
    });

    /** A signed-in session, remembered (a lifetime of its own) or not; no web request touches it after this. */
    async function signIn(user: string, remember: boolean): Promise<{ id: string; cookie: string }> {
      const s = cluster.web.open(undefined);
      s.setUser(user);
      if (remember) s.setLifetime({ idle: OWN_IDLE_MS, absolute: '1h' });
      await s.commit();
      const id = s.id as string;
      return { id, cookie: `${cluster.web.cookieName}=${cluster.web.sign(id)}` };
    }

    const sseClose = async (s: SseStream) => JSON.parse((await s.waitFor((e) => e.event === 'close', 100)).data);
    const stillOpen = (c: TestClient) => c.ws.readyState === c.ws.OPEN;

    it.skipIf(skip)(
      'stays alive over WebSocket and over SSE while the ordinary sessions end and their sockets close with 4001',
      async () => {
        const remembered = await signIn('rita', true);
        const rememberedOverSse = await signIn('rita', true);
        const ordinary = await signIn('otto', false);
        const ordinaryOverSse = await signIn('otto', false);
        const sse = (cookie: string) => openSse(`${gw.http}/sse`, { cookie, origin: ORIGIN });
        const [ws, wsOrdinary] = await Promise.all([
          cluster.client(gw.url, remembered.cookie),
          cluster.client(gw.url, ordinary.cookie),
        ]);
        const [stream, streamOrdinary] = await Promise.all([
          sse(rememberedOverSse.cookie),
          sse(ordinaryOverSse.cookie),
        ]);
        await Promise.all([ws, wsOrdinary].map((c) => c.waitFor((m) => m.type === 'hello')));

        // The ordinary sessions end at their idle deadline, between two touches; their sockets are closed.
        expect(await wsOrdinary.closed).toMatchObject({ code: 4001 });
        await streamOrdinary.ended;
        expect(await sseClose(streamOrdinary)).toMatchObject({ code: 4001 });
        if (store.capabilities.lifecycle) {
          await until(
            () => ended.filter((e) => e.id === ordinary.id || e.id === ordinaryOverSse.id).length === 2,
            3000,
            'onSessionEnd for both ordinary sessions',
          );
          expect(ended.filter((e) => e.reason !== 'idle-timeout')).toEqual([]);
        }
        for (const id of [ordinary.id, ordinaryOverSse.id]) expect(await cluster.web.load(id)).toBeNull();

        await sleep(KEPT_FOR_MS);
        expect(stillOpen(ws)).toBe(true);
        expect(stream.events.some((e) => e.event === 'close')).toBe(false);
        for (const id of [remembered.id, rememberedOverSse.id]) {
          expect(await cluster.web.load(id), `session ${id}`).not.toBeNull();
          expect(ended.map((e) => e.id)).not.toContain(id);
        }
        stream.close();
      },
      KEPT_FOR_MS + 15_000,
    );
  },
);
