import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { silentLogger } from 'shoal';
import { afterEach } from 'vitest';
import { WebSocket } from 'ws';
import type { Bus } from '../../src/bus/contract.js';
import { memoryBus } from '../../src/bus/memory.js';
import type { ShoalClient, WebSocketConstructor } from '../../src/client/index.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/realtime/gateway.js';
import { createPublisher } from '../../src/realtime/publisher.js';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { memoryStore } from '../../src/stores/memory.js';
import { eventually } from '../helpers/eventually.js';
import { type Balancer, startBalancer } from './balancer.js';

export const ORIGIN = 'http://localhost';

/** A reconnect backoff short enough for tests. */
export const fast = { base: 20, cap: 200 };

/** Real gateways on one memory bus and one memory store, behind a round-robin balancer. */
export interface Cluster {
  namespace: string;
  store: SessionStore;
  sessions: SessionManager;
  /** A bus handle for publishing (what a web node would hold). */
  bus: Bus;
  gateways: Gateway[];
  balancer: Balancer;
  url: string;
  startGateway(extra?: Partial<GatewayOptions>): Promise<Gateway>;
  /** Mints a live session; returns its id and the Cookie header a browser would send. */
  login(user?: string): Promise<{ id: string; cookie: string }>;
  close(): Promise<void>;
}

export async function startCluster(o: { gateways?: number; historySize?: number } = {}): Promise<Cluster> {
  const namespace = `client-test-${randomUUID()}`;
  const busOptions = { namespace, ...(o.historySize ? { historySize: o.historySize } : {}) };
  const store = memoryStore();
  const sessions = new SessionManager({
    store,
    secrets: ['client-sdk-test-secret-0123456789abcdef'],
    cookie: { secure: false },
    sweep: { enabled: false },
  });
  const buses: Bus[] = [];
  const bus = memoryBus(busOptions);
  buses.push(bus);
  const gateways: Gateway[] = [];
  const balancer = await startBalancer([]);

  const cluster: Cluster = {
    namespace,
    store,
    sessions,
    bus,
    gateways,
    balancer,
    url: `ws://127.0.0.1:${balancer.port}/`,
    async startGateway(extra = {}) {
      const gwBus = memoryBus(busOptions);
      buses.push(gwBus);
      const gw = await createGateway({
        bus: gwBus,
        sessions,
        origins: [ORIGIN],
        authorize: () => true,
        logger: silentLogger,
        // Its own registry: the counts a test reads are its gateway's, not those of others in this process.
        metrics: { registry: new Registry() },
        ...extra,
      });
      await gw.listen(0);
      gateways.push(gw);
      balancer.backends.push((gw.server.address() as AddressInfo).port);
      return gw;
    },
    async login(user) {
      const s = sessions.open(undefined);
      if (user) s.setUser(user);
      s.set('seen', true);
      await s.commit();
      const header = sessions.setCookieHeader(s);
      if (!header || !s.id) throw new Error('the session was not created');
      return { id: s.id, cookie: header.split(';')[0] as string };
    },
    async close() {
      await balancer.close();
      await Promise.all(gateways.map((g) => g.close().catch(() => {})));
      await sessions.close();
      await Promise.all(buses.map((b) => b.close()));
    },
  };
  for (let i = 0; i < (o.gateways ?? 1); i++) await cluster.startGateway();
  return cluster;
}

/**
 * The clients and the cluster a test opens, closed after each test of the file that calls this
 * (at its top level): `startCluster` as above, and `track` for each client.
 */
export function closedAfterEachTest() {
  let cluster: Cluster | undefined;
  const clients: ShoalClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await cluster?.close();
    cluster = undefined;
  });
  return {
    async startCluster(o?: Parameters<typeof startCluster>[0]): Promise<Cluster> {
      cluster = await startCluster(o);
      return cluster;
    },
    track<E extends Record<string, unknown>>(c: ShoalClient<E>): ShoalClient<E> {
      clients.push(c as unknown as ShoalClient);
      return c;
    },
  };
}

/** The `ws` client with the headers a browser would send (cookie, Origin); counts the sockets it opens. */
export function browserWebSocket(cookie: string, opened?: (url: string) => void): WebSocketConstructor {
  return class BrowserLikeWebSocket extends WebSocket {
    constructor(url: string) {
      super(url, { headers: { cookie, origin: ORIGIN }, perMessageDeflate: false });
      opened?.(url);
    }
  };
}

/** Polls until `check` returns true; fails with `what` after timeoutMs. */
export async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  await eventually(check, { timeoutMs, intervalMs: 10, message: what });
}

/**
 * Drains the gateway a client is on while messages keep coming: `before` `chat` messages `{ n }`,
 * then the drain starts and `n` goes on up to `total`, 2 ms apart. Resolves with the drained
 * gateway's id once its drain is over.
 */
export async function drainItsGatewayWhilePublishing(
  cluster: Cluster,
  client: { hello: { gateway: string } | null },
  channel: string,
  before: number,
  total: number,
): Promise<string> {
  const first = client.hello?.gateway;
  const gw = cluster.gateways.find((g) => g.id === first);
  if (!gw || first === undefined) throw new Error('client is on no known gateway');
  const publisher = createPublisher<{ chat: { n: number } }>(cluster.bus);
  for (let n = 1; n <= before; n++) await publisher.to(channel).send('chat', { n });
  const draining = gw.drain(0);
  for (let n = before + 1; n <= total; n++) {
    await publisher.to(channel).send('chat', { n });
    await sleep(2);
  }
  await draining;
  return first;
}

export { sleep };
