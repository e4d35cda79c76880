import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import type { Bus } from '../../src/bus/contract.js';
import { memoryBus } from '../../src/bus/memory.js';
import type { WebSocketConstructor } from '../../src/client/index.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/realtime/gateway.js';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { memoryStore } from '../../src/stores/memory.js';
import { type Balancer, startBalancer } from './balancer.js';

export const ORIGIN = 'http://localhost';

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
        log: () => {},
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
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
