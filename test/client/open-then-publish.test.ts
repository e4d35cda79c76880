/**
 * What is published right after the client reports `open` reaches it, on every transport.
 *
 * The page subscribes at connect time, so its channel rides in the first connect URL
 * (`channels=`), waits for `open`, and then messages are published to that channel. The client
 * has no cursor for the channel until the gateway answers `subscribed`, so the gateway's start
 * position decides what it gets: a position read after those publishes would start the channel
 * past them, and nothing would tell the client (no gap, no `reset`). docs/client.md promises every
 * message once, in order.
 *
 * A real gateway on every bus (Redis, RabbitMQ, PostgreSQL, NATS, SQLite, memory), the package's
 * own client over SSE and WebSocket, publishing from a bus client of its own as a web node does.
 * On the networked buses the gateway also reaches its bus through a fault proxy that delays every
 * packet, so the time the gateway takes to join the channel (bus subscription, then its position)
 * is wide and the race is decided the same way every round.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { connect as natsConnect } from 'nats';
import pg from 'pg';
import { Registry } from 'prom-client';
import { type Bus, createBus, createPublisher, createStore, SessionManager, silentLogger } from 'shoal';
import { dropAmqpNamespace } from 'shoal/bus/amqp';
import { streamName } from 'shoal/bus/nats';
import { postgresBus } from 'shoal/bus/postgres';
import { connect, type ShoalClient } from 'shoal/client';
import { createGateway, type Gateway } from 'shoal/gateway';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { type FaultProxy, faultProxy, targetOf, viaProxy } from '../helpers/fault-proxy.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { eventSourceWith } from './event-source.js';

const ORIGIN = 'http://localhost';
const SECRET = 'open-then-publish-test-secret-0123456789';
const MESSAGES = 5;
/** Rounds with the bus delayed (the race decided every time) and without it (the ordinary case). */
const DELAYED_ROUNDS = 2;
const PLAIN_ROUNDS = 6;
const run = randomUUID().slice(0, 8);
const scratch = mkdtempSync(join(tmpdir(), 'shoal-open-pub-'));
const pgTable = `shoal_bus_open_pub_${run}`;

type Events = { chat: { n: number } };
type TransportName = 'sse' | 'websocket';

interface BusKind {
  name: string;
  /** The URL a web node and the gateway share; null for a bus only this process can reach. */
  url: string | null;
  open(url: string, namespace: string): Promise<Bus>;
  /**
   * One way, per packet, between the gateway and its bus when delayed: a join takes several round
   * trips of twice this (on RabbitMQ dozens, so less there: the window stays wide, the test short).
   */
  delayMs?: number;
  skip?: string | undefined;
  cleanup?(namespace: string): Promise<void>;
}

// Generous: a delayed join is several round trips, and must not be taken for a bus outage.
const timeoutMs = 10_000;
const kinds: BusKind[] = [
  { name: 'memory', url: null, open: (_url, namespace) => createBus('memory:', { namespace }) },
  {
    name: 'sqlite',
    url: null,
    open: (_url, namespace) => createBus(`sqlite:${join(scratch, 'bus.db')}`, { namespace }),
  },
  {
    name: 'redis',
    url: ENGINE_URLS.redis,
    delayMs: 80,
    skip: await engineSkipReason('redis'),
    open: (url, namespace) => createBus(url, { namespace, timeoutMs }),
    async cleanup(namespace) {
      const raw = new Redis(ENGINE_URLS.redis, { maxRetriesPerRequest: 1 });
      await deleteKeys(raw, `shoal:{${namespace}:*`, { rounds: 100 });
      await raw.quit();
    },
  },
  {
    name: 'amqp',
    url: ENGINE_URLS.amqp,
    delayMs: 20,
    skip: await engineSkipReason('amqp'),
    open: (url, namespace) => createBus(url, { namespace, timeoutMs }),
    cleanup: (namespace) => dropAmqpNamespace(ENGINE_URLS.amqp, namespace),
  },
  {
    name: 'postgres',
    url: ENGINE_URLS.postgres,
    delayMs: 40,
    skip: await engineSkipReason('postgres'),
    open: (url, namespace) => postgresBus({ url, namespace, table: pgTable, timeoutMs }),
    async cleanup() {
      const admin = new pg.Client({ connectionString: ENGINE_URLS.postgres });
      admin.on('error', () => {});
      await admin.connect();
      await admin.query(`DROP TABLE IF EXISTS "${pgTable}_log", "${pgTable}_channels"`);
      await admin.end();
    },
  },
  {
    name: 'nats',
    url: ENGINE_URLS.nats,
    delayMs: 40,
    skip: await engineSkipReason('nats'),
    open: (url, namespace) => createBus(url, { namespace, timeoutMs }),
    async cleanup(namespace) {
      const nc = await natsConnect({ servers: targetOf(ENGINE_URLS.nats) });
      await (await nc.jetstreamManager()).streams.delete(streamName(namespace)).catch(() => false);
      await nc.close();
    },
  },
];

interface Setup {
  kind: BusKind;
  namespace: string;
  proxy: FaultProxy | null;
  sessions: SessionManager;
  gatewayBus: Bus;
  publisherBus: Bus;
  gateway: Gateway;
  url: string;
  cookie: string;
}

const setups = new Map<string, Setup>();

async function setUp(kind: BusKind): Promise<Setup> {
  const namespace = `open-pub-${run}-${kind.name}`;
  const proxy = kind.url ? await faultProxy(targetOf(kind.url)) : null;
  const gatewayBus = await kind.open(kind.url && proxy ? viaProxy(kind.url, proxy) : '', namespace);
  const publisherBus = await kind.open(kind.url ?? '', namespace);
  const sessions = new SessionManager({
    store: await createStore('memory:'),
    secrets: [SECRET],
    cookie: { secure: false },
    sweep: { enabled: false },
  });
  const gateway = await createGateway({
    bus: gatewayBus,
    sessions,
    origins: [ORIGIN],
    authorize: (_s, channel) => channel.startsWith('room:'),
    logger: silentLogger,
    metrics: { registry: new Registry() },
  });
  await gateway.listen(0, '127.0.0.1');
  await eventually(() => gateway.ready().then(() => true), { timeoutMs: 15_000, message: 'the gateway ready' });
  const s = sessions.open(undefined);
  s.setUser('rita');
  await s.commit();
  const header = sessions.setCookieHeader(s);
  if (!header) throw new Error('no session cookie');
  const port = (gateway.server.address() as AddressInfo).port;
  return {
    kind,
    namespace,
    proxy,
    sessions,
    gatewayBus,
    publisherBus,
    gateway,
    url: `ws://127.0.0.1:${port}/ws`,
    cookie: header.split(';')[0] as string,
  };
}

async function tearDown(s: Setup): Promise<void> {
  s.proxy?.clear();
  await s.gateway.close().catch(() => {});
  await s.sessions.close().catch(() => {});
  await s.gatewayBus.close().catch(() => {});
  await s.publisherBus.close().catch(() => {});
  await s.proxy?.close();
  await s.kind.cleanup?.(s.namespace);
}

beforeAll(async () => {
  await Promise.all(kinds.filter((kind) => !kind.skip).map(async (kind) => setups.set(kind.name, await setUp(kind))));
}, 60_000);

afterAll(async () => {
  await Promise.all([...setups.values()].map(tearDown));
  rmSync(scratch, { recursive: true, force: true });
}, 60_000);

function clientOf(s: Setup, transport: TransportName): ShoalClient<Events> {
  const { cookie } = s;
  class BrowserLikeWebSocket extends WebSocket {
    constructor(url: string) {
      super(url, { headers: { cookie, origin: ORIGIN }, perMessageDeflate: false });
    }
  }
  return connect<Events>(s.url, {
    transport,
    WebSocket: BrowserLikeWebSocket,
    EventSource: eventSourceWith({ cookie, origin: ORIGIN }),
    backoff: { base: 20, cap: 200 },
  });
}

/**
 * One round: subscribe at connect time, publish as soon as the client is open; what arrived, and the
 * resets. With `thenSubscribe`, the page subscribes to one more channel at `open`, before the publishes:
 * over SSE that reopens the stream, before the first channel's `subscribed` may have arrived.
 */
async function round(
  s: Setup,
  transport: TransportName,
  thenSubscribe = false,
): Promise<{ got: number[]; resets: number; cursor: unknown }> {
  const room = `room:${randomUUID().slice(0, 8)}`;
  const rt = clientOf(s, transport);
  const got: number[] = [];
  let resets = 0;
  try {
    rt.on('reset', () => resets++);
    rt.subscribe(room, (m) => got.push(m.data.n));
    if (thenSubscribe)
      rt.on('state', (state) => {
        if (state === 'open') rt.subscribe(`${room}-next`, () => {});
      });
    await eventually(() => rt.state === 'open', { timeoutMs: 10_000, message: `${transport} open` });
    const publisher = createPublisher<Events>(s.publisherBus);
    for (let n = 1; n <= MESSAGES; n++) await publisher.to(room).send('chat', { n });
    // Waits for all of them; a round that lost some ends at the timeout and fails below. The window is
    // wide: with the bus slowed, a new channel's join on AMQP takes ~2 s, and its replay brings them after.
    await eventually(() => got.length >= MESSAGES, { timeoutMs: 10_000 }).catch(() => {});
    return { got, resets, cursor: rt.cursor(room) };
  } finally {
    rt.close();
  }
}

const all = Array.from({ length: MESSAGES }, (_, i) => i + 1);

// The buses run side by side (each has its own gateway and proxy, and mostly waits on them); one
// bus's rounds run one after another, since its delayed ones slow its proxy for the time they run.
describe.concurrent.each(kinds)('$name bus: messages published right after open', (kind) => {
  describe.skipIf(kind.skip)('', { sequential: true }, () => {
    for (const transport of ['sse', 'websocket'] as const) {
      // In-process buses (memory, SQLite) have no connection to slow down: no delayed variant.
      if (kind.delayMs !== undefined)
        it(`${transport}: every one arrives, the bus delayed`, async () => {
          const s = setups.get(kind.name) as Setup;
          s.proxy?.latency(kind.delayMs ?? 0);
          try {
            for (let r = 1; r <= DELAYED_ROUNDS; r++) {
              const outcome = await round(s, transport);
              expect({ round: r, ...outcome }).toMatchObject({ round: r, got: all, resets: 0 });
            }
          } finally {
            s.proxy?.clear();
          }
        }, 60_000);

      it(`${transport}: every one arrives, another channel subscribed at open`, async () => {
        const s = setups.get(kind.name) as Setup;
        for (let r = 1; r <= 3; r++) {
          const outcome = await round(s, transport, true);
          expect({ round: r, ...outcome }).toMatchObject({ round: r, got: all, resets: 0 });
        }
      }, 60_000);

      it(`${transport}: every one arrives, ${PLAIN_ROUNDS} rounds`, async () => {
        const s = setups.get(kind.name) as Setup;
        for (let r = 1; r <= PLAIN_ROUNDS; r++) {
          const outcome = await round(s, transport);
          expect({ round: r, ...outcome }).toMatchObject({ round: r, got: all, resets: 0 });
        }
      }, 60_000);
    }
  });
});
