import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a real server, with faults switched at
 * runtime: what the reliability tests put between shoal and Redis, PostgreSQL,
 * NATS, RabbitMQ or a WebSocket client. The faults model what a network does
 * to TCP, never what it cannot do: bytes are delayed, held or throttled but
 * never silently dropped or reordered inside a connection (TCP would retransmit
 * them), so a client's protocol stream stays consistent.
 *
 * - latency(ms, jitter): each chunk is delivered ms ± jitter after it arrived, per
 *   direction (a request/response round trip pays it twice), order preserved.
 * - bandwidth(bytesPerSecond): per connection and direction. The proxy stops
 *   reading when its queue is full, so the sender feels real backpressure.
 * - blackhole(): a partition. Existing and new connections are accepted but nothing
 *   is forwarded either way (a new one does not even reach the server); what is held
 *   is bounded by the same backpressure. clear() heals: held bytes flow on, as TCP
 *   retransmission would deliver them.
 * - reset(): RST on every existing connection and on every new one until clear().
 * - down() / up(): the server is gone (connections closed, port refuses) / back on the same port.
 */
export interface FaultProxy {
  readonly port: number;
  /** host:port of the proxy, for URLs. */
  readonly address: string;
  latency(ms: number, jitterMs?: number): void;
  /** null lifts the limit. */
  bandwidth(bytesPerSecond: number | null): void;
  blackhole(): void;
  reset(): void;
  down(): Promise<void>;
  up(): Promise<void>;
  /** Lifts every fault (latency, bandwidth, blackhole, reset); held bytes are delivered. Does not bring it up. */
  clear(): void;
  stats(): FaultProxyStats;
  /** Destroys every socket and stops listening for good. */
  close(): Promise<void>;
}

export interface FaultProxyStats {
  /** Client connections accepted since start. */
  accepted: number;
  /** Client connections open now. */
  open: number;
  /** The most client connections open at once. */
  maxOpen: number;
  /** Bytes delivered client → server and server → client. */
  bytesUp: number;
  bytesDown: number;
  /** Bytes waiting in the proxy now (queued for latency/bandwidth or held by a blackhole). */
  queued: number;
  /** The most bytes one direction of one connection ever had queued. */
  maxQueued: number;
}

export interface FaultProxyOptions {
  /** Per direction and connection: over this the proxy stops reading from the sender. Default 64 KiB. */
  highWaterBytes?: number;
}

interface Chunk {
  data: Buffer;
  due: number;
}

/** One direction of one connection: reads `from`, writes `to`, applying the current faults. */
class Lane {
  readonly queue: Chunk[] = [];
  queued = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastDue = 0;
  #tokens = 0;
  #refilled = Date.now();
  #sinkBlocked = false;
  #paused = false;

  constructor(
    readonly from: Socket,
    readonly to: () => Socket | undefined,
    readonly proxy: ProxyState,
    readonly count: (n: number) => void,
  ) {
    from.on('data', (data: Buffer) => this.push(data));
    from.on('end', () => {
      this.ended = true;
      this.pump();
    });
  }

  /** The sender sent FIN: forwarded once everything before it is delivered. */
  ended = false;

  push(data: Buffer): void {
    const p = this.proxy;
    const now = Date.now();
    const delay = p.latencyMs > 0 ? Math.max(0, p.latencyMs + (Math.random() * 2 - 1) * p.jitterMs) : 0;
    // Never earlier than the chunk before it: TCP delivers in order, whatever the jitter.
    const due = Math.max(this.#lastDue, now + delay);
    this.#lastDue = due;
    this.queue.push({ data, due });
    this.queued += data.length;
    p.trackQueued(this.queued);
    if (this.queued > p.highWaterBytes && !this.#paused) {
      this.#paused = true;
      this.from.pause();
    }
    this.pump();
  }

  /** Delivers what is due and allowed, then sleeps until the next thing can move. */
  pump(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const p = this.proxy;
    const sink = this.to();
    if (p.blackholed || this.#sinkBlocked || !sink || sink.destroyed || sink.connecting) return;
    const wait = this.#deliver(sink, p);
    if (wait !== undefined) this.#timer = setTimeout(() => this.pump(), Math.max(1, wait));
    if (this.#paused && this.queued <= p.highWaterBytes / 2) {
      this.#paused = false;
      this.from.resume();
    }
    if (this.ended && this.queue.length === 0 && !sink.writableEnded) sink.end();
  }

  /** Writes what may go now; returns how long until more may (undefined: nothing to wait for). */
  #deliver(sink: Socket, p: ProxyState): number | undefined {
    const now = Date.now();
    if (p.bytesPerSecond !== null) {
      // Burst of at most 50 ms worth, so a limit is smooth at every time scale the tests look at.
      const burst = Math.max(1, Math.floor(p.bytesPerSecond / 20));
      this.#tokens = Math.min(burst, this.#tokens + ((now - this.#refilled) / 1000) * p.bytesPerSecond);
    }
    this.#refilled = now;
    while (this.queue.length > 0) {
      const head = this.queue[0] as Chunk;
      if (head.due > now) return head.due - now;
      let data = head.data;
      if (p.bytesPerSecond !== null) {
        const allowed = Math.floor(this.#tokens);
        if (allowed < 1) return Math.ceil(((1 - this.#tokens) / p.bytesPerSecond) * 1000);
        if (data.length > allowed) {
          head.data = data.subarray(allowed);
          data = data.subarray(0, allowed);
        } else this.queue.shift();
        this.#tokens -= data.length;
      } else this.queue.shift();
      this.queued -= data.length;
      this.count(data.length);
      if (!sink.write(data)) {
        this.#sinkBlocked = true;
        sink.once('drain', () => {
          this.#sinkBlocked = false;
          this.pump();
        });
        return undefined;
      }
    }
    return undefined;
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.queue.length = 0;
    this.queued = 0;
  }
}

interface ProxyState {
  latencyMs: number;
  jitterMs: number;
  bytesPerSecond: number | null;
  blackholed: boolean;
  highWaterBytes: number;
  trackQueued(n: number): void;
}

interface Pair {
  inbound: Socket;
  outbound: Socket | undefined;
  lanes: Lane[];
  /** Connects to the target (deferred while blackholed: the proxy accepted, the server never heard). */
  open(): void;
  destroy(rst: boolean): void;
}

/** Starts a fault proxy to `target` ("host:port" or a port on 127.0.0.1) on a free port. */
export async function faultProxy(target: string | number, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const [host, portText] = typeof target === 'number' ? ['127.0.0.1', String(target)] : splitHostPort(target);
  const targetPort = Number(portText);
  const pairs = new Set<Pair>();
  const stats: FaultProxyStats = {
    accepted: 0,
    open: 0,
    maxOpen: 0,
    bytesUp: 0,
    bytesDown: 0,
    queued: 0,
    maxQueued: 0,
  };
  const state: ProxyState = {
    latencyMs: 0,
    jitterMs: 0,
    bytesPerSecond: null,
    blackholed: false,
    highWaterBytes: options.highWaterBytes ?? 64 * 1024,
    trackQueued: (n) => {
      stats.maxQueued = Math.max(stats.maxQueued, n);
    },
  };
  let resetting = false;
  let server: Server | undefined;
  let port = 0;
  let closed = false;

  const accept = (inbound: Socket) => {
    stats.accepted++;
    if (resetting) {
      inbound.resetAndDestroy();
      return;
    }
    inbound.setNoDelay(true);
    let closedSockets = 0;
    const pair: Pair = {
      inbound,
      outbound: undefined,
      lanes: [],
      open() {
        if (pair.outbound || inbound.destroyed) return;
        const outbound = connect({ host, port: targetPort, noDelay: true, allowHalfOpen: true });
        pair.outbound = outbound;
        outbound.on('connect', () => upLane.pump());
        watch(outbound, () => inbound);
        const down = (n: number) => {
          stats.bytesDown += n;
        };
        pair.lanes.push(new Lane(outbound, () => inbound, state, down));
      },
      destroy(rst) {
        if (!pairs.delete(pair)) return;
        stats.open = pairs.size;
        for (const lane of pair.lanes) lane.stop();
        for (const s of [inbound, pair.outbound]) {
          if (!s || s.destroyed) continue;
          if (rst) s.resetAndDestroy();
          else s.destroy();
        }
      },
    };
    /** An error on one side is passed on as a reset; a clean close waits for the other direction to finish. */
    const watch = (socket: Socket, other: () => Socket | undefined) => {
      socket.on('error', () => {
        const o = other();
        if (o && !o.destroyed) o.resetAndDestroy();
        pair.destroy(false);
      });
      socket.on('close', () => {
        for (const lane of pair.lanes) if (lane.to() === socket) lane.stop();
        if (++closedSockets === 2 || !pair.outbound) pair.destroy(false);
      });
    };
    const upLane = new Lane(
      inbound,
      () => pair.outbound,
      state,
      (n) => {
        stats.bytesUp += n;
      },
    );
    pair.lanes.push(upLane);
    watch(inbound, () => pair.outbound);
    pairs.add(pair);
    stats.open = pairs.size;
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    if (!state.blackholed) pair.open();
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const srv = createServer({ allowHalfOpen: true }, accept);
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        srv.off('error', reject);
        port = (srv.address() as { port: number }).port;
        server = srv;
        resolve();
      });
    });

  const pumpAll = () => {
    for (const pair of pairs) {
      pair.open();
      for (const lane of pair.lanes) lane.pump();
    }
  };

  const down = async () => {
    const srv = server;
    server = undefined;
    for (const pair of [...pairs]) pair.destroy(false);
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
  };

  await listen();
  return {
    get port() {
      return port;
    },
    get address() {
      return `127.0.0.1:${port}`;
    },
    latency(ms, jitterMs = 0) {
      state.latencyMs = ms;
      state.jitterMs = Math.min(jitterMs, ms);
    },
    bandwidth(bytesPerSecond) {
      state.bytesPerSecond = bytesPerSecond;
      pumpAll();
    },
    blackhole() {
      state.blackholed = true;
    },
    reset() {
      resetting = true;
      for (const pair of [...pairs]) pair.destroy(true);
    },
    down,
    async up() {
      if (closed) throw new Error('fault proxy: up() after close()');
      if (!server) await listen();
    },
    clear() {
      state.latencyMs = 0;
      state.jitterMs = 0;
      state.bytesPerSecond = null;
      state.blackholed = false;
      resetting = false;
      pumpAll();
    },
    stats() {
      let queued = 0;
      for (const pair of pairs) for (const lane of pair.lanes) queued += lane.queued;
      return { ...stats, queued };
    },
    async close() {
      closed = true;
      await down();
    },
  };
}

function splitHostPort(target: string): [string, string] {
  const colon = target.lastIndexOf(':');
  if (colon < 0) throw new Error(`fault proxy target "${target}" needs host:port`);
  return [target.slice(0, colon).replace(/^\[|\]$/g, ''), target.slice(colon + 1)];
}

/**
 * The same URL with its host:port replaced by the proxy's (credentials, path and
 * query kept): `viaProxy('redis://127.0.0.1:6379/0', proxy)` → `redis://127.0.0.1:<p>/0`.
 */
export function viaProxy(url: string, proxy: { address: string }): string {
  const u = new URL(url);
  u.host = proxy.address;
  return u.toString();
}

/** host:port a backend URL points at, with the scheme's default port when it has none. */
export function targetOf(url: string): string {
  const u = new URL(url);
  const defaults: Record<string, string> = {
    'redis:': '6379',
    'rediss:': '6379',
    'postgres:': '5432',
    'postgresql:': '5432',
    'nats:': '4222',
    'amqp:': '5672',
    'memcached:': '11211',
  };
  return `${u.hostname}:${u.port || defaults[u.protocol] || '80'}`;
}
