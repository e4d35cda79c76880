import { connect, createServer, type Socket } from 'node:net';

/**
 * A round-robin TCP balancer with no stickiness, in front of real gateways:
 * what decides which gateway a reconnecting client lands on. It can also drop
 * every live connection (a network cut), refuse new ones, and behave like a
 * proxy that blocks WebSocket upgrades (connections whose request asks for one
 * are cut, so the browser sees a handshake failure).
 */
export interface Balancer {
  readonly port: number;
  backends: number[];
  /** Connections accepted so far, per backend port. */
  readonly hits: Map<number, number>;
  cut(): void;
  /** Stops forwarding on every live connection, both ways, without closing it (a silent network partition). */
  freeze(): void;
  refuse(on: boolean): void;
  blockWebSocket(on: boolean): void;
  close(): Promise<void>;
}

export async function startBalancer(backends: number[]): Promise<Balancer> {
  const live = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  const hits = new Map<number, number>();
  let next = 0;
  let refusing = false;
  let blockingWs = false;

  const server = createServer((client) => {
    live.add(client);
    client.on('close', () => live.delete(client));
    client.on('error', () => client.destroy());
    if (refusing || b.backends.length === 0) return void client.destroy();
    const port = b.backends[next++ % b.backends.length] as number;
    hits.set(port, (hits.get(port) ?? 0) + 1);
    const upstream = connect({ host: '127.0.0.1', port });
    live.add(upstream);
    upstream.on('close', () => {
      live.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    client.once('data', (first: Buffer) => {
      if (blockingWs && /^upgrade:\s*websocket/im.test(first.toString('latin1'))) {
        client.destroy();
        return;
      }
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
      const pair: [Socket, Socket] = [client, upstream];
      pairs.add(pair);
      client.on('close', () => pairs.delete(pair));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const b: Balancer = {
    port: typeof address === 'object' && address ? address.port : 0,
    backends,
    hits,
    cut() {
      for (const s of live) s.destroy();
    },
    freeze() {
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    refuse(on) {
      refusing = on;
    },
    blockWebSocket(on) {
      blockingWs = on;
    },
    async close() {
      for (const s of live) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return b;
}
