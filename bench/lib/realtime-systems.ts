import { dirname, join, resolve } from 'node:path';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server as SocketIoServer } from 'socket.io';
import { WebSocket } from 'ws';
import type { Bus } from '../../src/bus/contract.js';
import { createBus } from '../../src/bus/index.js';
import { createPublisher } from '../../src/realtime/publisher.js';
import { buildProbe } from './build.js';
import { nowMs } from './histogram.js';
import { BENCH_SECRET } from './impls.js';
import { type BenchNode, ROOT, startNodes } from './nodes.js';
import type { BenchSession } from './sessions.js';
import type { ClientTarget, Protocol } from './ws-fleet.js';

export type SystemName = 'shoal' | 'socketio' | 'ws';

export const SYSTEM_LABELS: Record<SystemName, string> = {
  shoal: 'shoal (2 gateways, Redis bus)',
  socketio: 'Socket.IO + redis-adapter (2 servers, websocket only)',
  ws: 'raw ws broadcast (1 process, no bus)',
};

/** The Origin the benchmark's "pages" are served from; gateways allow only it. */
export const BENCH_ORIGIN = 'http://bench.localhost';

/** One realtime stack under test: its server processes, where clients connect, and a publisher. */
export interface RealtimeSystem {
  name: SystemName;
  protocol: Protocol;
  servers: BenchNode[];
  /** Where client `i` connects (spread over the servers) and with which headers. */
  target(i: number): ClientTarget;
  /** Publishes `n` payloads `{"id":…,"t":<ms>}` to the room, stamped just before each is handed over. */
  publish(n: number): Promise<void>;
  readonly published: number;
  stop(): Promise<void>;
}

export interface SystemOptions {
  name: SystemName;
  /** Server processes (the raw ws ceiling always runs one). */
  servers: number;
  redisUrl: string;
  room: string;
  /** Unique per run: Socket.IO's Redis key prefix. */
  runId: string;
  /** shoal only: one signed-in browser per client (client i uses sessions[i % length]). */
  sessions?: BenchSession[];
  /** Extra flags for every server process (--cpu-prof, --expose-gc …). */
  nodeFlags?: (name: string) => string[];
  /** Run shoal from TypeScript through tsx rather than compiled JavaScript. */
  tsx?: boolean;
  /** Server process name (also shoal's gateway id); numbered when there are several. */
  serverName?: string;
}

const wsUrl = (node: BenchNode, path: string) => `${node.url.replace(/^http/, 'ws')}${path}`;

/** The gateway CLI and the probe app module, compiled (what production runs) or as TypeScript. */
async function shoalEntry(tsx: boolean): Promise<{ main: string; app: string; flags: string[] }> {
  if (tsx) {
    return {
      main: join(ROOT, 'src', 'cli', 'main.ts'),
      app: join(ROOT, 'examples', 'probe', 'shoal.app.ts'),
      flags: ['--import', 'tsx'],
    };
  }
  const buildRoot = resolve(dirname(await buildProbe()), '..', '..');
  return {
    main: join(buildRoot, 'src', 'cli', 'main.js'),
    app: join(buildRoot, 'examples', 'probe', 'shoal.app.js'),
    flags: [],
  };
}

export async function startSystem(o: SystemOptions): Promise<RealtimeSystem> {
  switch (o.name) {
    case 'shoal':
      return startShoal(o);
    case 'socketio':
      return startSocketIo(o);
    case 'ws':
      return startRawWs(o);
  }
}

async function startShoal(o: SystemOptions): Promise<RealtimeSystem> {
  const sessions = o.sessions ?? [];
  if (sessions.length === 0) throw new Error('shoal needs sessions: its gateways refuse anonymous clients');
  const entry = await shoalEntry(o.tsx ?? false);
  const servers = await startNodes(o.servers, {
    name: o.serverName ?? 'shoal-gw',
    script: 'bench/peers/shoal-gateway.mjs',
    nodeFlags: [...entry.flags, ...(o.nodeFlags?.('shoal') ?? [])],
    readyPath: '/readyz',
    env: {
      NODE_ENV: 'production',
      BENCH_SHOAL_MAIN: entry.main,
      BENCH_SHOAL_APP: entry.app,
      SHOAL_STORE: o.redisUrl,
      SHOAL_BUS: o.redisUrl,
      SHOAL_SECRETS: BENCH_SECRET,
      SHOAL_COOKIE_SECURE: 'false',
      SHOAL_ORIGINS: BENCH_ORIGIN,
      // Clients are gone before the gateways stop: nothing to spread.
      SHOAL_DRAIN_WINDOW: '100ms',
    },
  });
  let bus: Bus;
  try {
    bus = await createBus(o.redisUrl);
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  const room = createPublisher(bus).to(o.room);
  let published = 0;
  const query = `/?channels=${encodeURIComponent(o.room)}`;
  return {
    name: 'shoal',
    protocol: 'shoal',
    servers,
    target: (i) => ({
      url: wsUrl(servers[i % servers.length] as BenchNode, query),
      headers: { cookie: (sessions[i % sessions.length] as BenchSession).cookie, origin: BENCH_ORIGIN },
    }),
    async publish(n) {
      const sends: Array<Promise<unknown>> = [];
      for (let k = 0; k < n; k++) sends.push(room.send('m', { id: ++published, t: nowMs() }));
      await Promise.all(sends);
    },
    get published() {
      return published;
    },
    async stop() {
      await Promise.allSettled([bus.close(), ...servers.map((s) => s.stop())]);
    },
  };
}

async function startSocketIo(o: SystemOptions): Promise<RealtimeSystem> {
  const servers = await startNodes(o.servers, {
    name: 'socketio',
    script: 'bench/peers/socketio-server.mjs',
    nodeFlags: o.nodeFlags?.('socketio') ?? [],
    env: { NODE_ENV: 'production', BENCH_REDIS_URL: o.redisUrl, BENCH_SIO_KEY: o.runId, BENCH_SIO_ROOM: o.room },
  });
  // The publisher is a third Socket.IO server with no sockets of its own: its emit goes out through the adapter.
  const pub = new Redis(o.redisUrl);
  const sub = pub.duplicate();
  const io = new SocketIoServer();
  io.adapter(createAdapter(pub, sub, { key: o.runId }));
  let published = 0;
  return {
    name: 'socketio',
    protocol: 'socketio',
    servers,
    target: (i) => ({ url: wsUrl(servers[i % servers.length] as BenchNode, '/socket.io/?EIO=4&transport=websocket') }),
    async publish(n) {
      for (let k = 0; k < n; k++) io.to(o.room).emit('msg', { id: ++published, t: nowMs() });
    },
    get published() {
      return published;
    },
    async stop() {
      // Not io.close(): a server never attached to HTTP has no engine to close.
      pub.disconnect();
      sub.disconnect();
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
}

async function startRawWs(o: SystemOptions): Promise<RealtimeSystem> {
  const servers = await startNodes(1, {
    name: 'ws',
    script: 'bench/peers/ws-server.mjs',
    nodeFlags: o.nodeFlags?.('ws') ?? [],
    env: { NODE_ENV: 'production' },
  });
  const server = servers[0] as BenchNode;
  const control = new WebSocket(wsUrl(server, '/publish'), { perMessageDeflate: false });
  control.on('error', () => {});
  await new Promise<void>((ok, fail) => {
    control.once('open', () => ok());
    control.once('error', fail);
  });
  let published = 0;
  return {
    name: 'ws',
    protocol: 'raw',
    servers,
    target: () => ({ url: wsUrl(server, '/') }),
    async publish(n) {
      for (let k = 0; k < n; k++) control.send(`{"id":${++published},"t":${nowMs()}}`);
    },
    get published() {
      return published;
    },
    async stop() {
      control.terminate();
      await server.stop();
    },
  };
}
