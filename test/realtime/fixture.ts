import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { silentLogger } from 'shoal';
import type { Bus } from '../../src/bus/contract.js';
import { memoryBus } from '../../src/bus/memory.js';
import type { ServerMessage } from '../../src/protocol/index.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/realtime/gateway.js';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionOptions } from '../../src/session/options.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/processes.js';
import { type ConnectOptions, connect, type TestClient } from './ws-client.js';

export const ORIGIN = 'https://app.example.com';
export const SECRET = 'gateway-test-secret-0123456789abcdefghij';
export const PUBLISH_KEY = 'publish-key-for-tests';

export interface RunningGateway {
  gateway: Gateway;
  bus: Bus;
  url: string;
  http: string;
}

/**
 * A small cluster in this process: a web node's session manager and N gateways on one store and
 * one bus (each gateway with its own bus client, as separate processes would have), and `ws`
 * clients carrying a signed session cookie and the allowed Origin. Everything it opens, `close()` closes.
 */
export function realtimeCluster(o: {
  store: SessionStore;
  /** Opens one bus client; default the memory bus under a fresh namespace. */
  openBus?: () => Promise<Bus> | Bus;
  session?: Partial<SessionOptions>;
}) {
  const ns = `rt-${randomUUID()}`;
  const openBus = o.openBus ?? (() => memoryBus({ namespace: ns }));
  const sessionOptions = {
    store: o.store,
    secrets: [SECRET],
    cookie: { secure: false },
    sweep: { enabled: false },
    ...o.session,
  } as SessionOptions;
  const web = new SessionManager(sessionOptions);
  const gwSessions = new SessionManager(sessionOptions);
  const buses: Bus[] = [];
  const gateways: Gateway[] = [];
  const clients: TestClient[] = [];

  return {
    web,
    async bus(): Promise<Bus> {
      const bus = await openBus();
      buses.push(bus);
      return bus;
    },
    sessionOptions,
    /** Starts a gateway on a free port; `bus` is its own bus client, opened here when not given. */
    async gateway(extra: Partial<Omit<GatewayOptions, 'bus'>> = {}, own?: Bus): Promise<RunningGateway> {
      if (own) buses.push(own);
      const bus = own ?? (await this.bus());
      const gateway = await createGateway({
        bus,
        sessions: gwSessions,
        origins: [ORIGIN],
        authorize: (_s, channel) => channel.startsWith('room:'),
        publishKey: PUBLISH_KEY,
        logger: silentLogger,
        // Its own registry: the counts a test reads are its gateway's, not those of others in this process.
        metrics: { registry: new Registry() },
        ...extra,
      });
      const port = await freePort();
      await gateway.listen(port);
      gateways.push(gateway);
      return { gateway, bus, url: `ws://127.0.0.1:${port}/ws`, http: `http://127.0.0.1:${port}` };
    },
    async login(user: string | null): Promise<{ id: string; cookie: string }> {
      const s = web.open(undefined);
      if (user) s.setUser(user);
      s.set('signedIn', true);
      await s.commit();
      const id = s.id as string;
      return { id, cookie: `${web.cookieName}=${web.sign(id)}` };
    },
    async client(url: string, cookie: string, extra: Omit<ConnectOptions, 'cookie'> = {}): Promise<TestClient> {
      const c = await connect(url, { cookie, origin: ORIGIN, ...extra });
      clients.push(c);
      return c;
    },
    async close(): Promise<void> {
      for (const c of clients) c.ws.terminate();
      await Promise.all(gateways.map((g) => g.close()));
      await Promise.all(buses.map((b) => b.close()));
      await Promise.all([web.close(), gwSessions.close()]);
    },
  };
}

export const subscribed = (channel: string) => (m: ServerMessage) => m.type === 'subscribed' && m.channel === channel;
export const isMsg =
  (channel: string) =>
  (m: ServerMessage): m is Extract<ServerMessage, { type: 'msg' }> =>
    m.type === 'msg' && m.channel === channel;

/** Waits for `check`, throwing with `what` when it is not met within `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
  what = 'condition',
): Promise<void> {
  await eventually(check, { timeoutMs, intervalMs: 10, message: what });
}

export { sleep };
